"""The globally-routable rule of callback URLs (khala/rules/addresses.py), block by block."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from khala.rules.addresses import IPV4_REFUSED, IPV6_REFUSED, is_global, refusal

GLOBAL_V4 = ["1.1.1.1", "8.8.8.8", "93.184.215.14", "100.63.255.255", "100.128.0.0",
             "126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255",
             "172.32.0.0", "192.0.1.0", "192.31.196.1", "192.52.193.1", "192.88.98.255",
             "192.88.100.0", "192.167.255.255", "192.169.0.0", "192.175.48.1", "198.17.255.255",
             "198.20.0.0", "223.255.255.255", "11.0.0.0", "9.255.255.255"]
GLOBAL_V6 = ["2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2620:4f:8000::1",
             "2001:200::1", "2003::1", "3ffe::1", "3fff:1000::"]


def _edges(block: IPv4Network | IPv6Network) -> list[IPv4Address | IPv6Address]:
    size = block.num_addresses
    return [block.network_address, block.network_address + size // 2, block.broadcast_address]


@pytest.mark.parametrize(("block", "what"), IPV4_REFUSED, ids=[str(b) for b, _ in IPV4_REFUSED])
def test_every_ipv4_block_is_refused_edge_to_edge(block: IPv4Network, what: str) -> None:
    for address in _edges(block):
        why = refusal(address)
        assert why is not None and what in why and str(block) in why, (address, why)
        assert refusal(str(address)) == why


@pytest.mark.parametrize(("block", "what"), IPV6_REFUSED, ids=[str(b) for b, _ in IPV6_REFUSED])
def test_every_ipv6_block_is_refused_edge_to_edge(block: IPv6Network, what: str) -> None:
    for address in _edges(block):
        if block.prefixlen == 23 and address in IPv6Network("2001::/32"):
            continue  # Teredo inside it: judged by what it carries (below)
        assert refusal(address) is not None, address


@pytest.mark.parametrize("text", GLOBAL_V4 + GLOBAL_V6)
def test_global_addresses_pass(text: str) -> None:
    assert refusal(text) is None and is_global(text)


def test_the_reported_gaps() -> None:
    assert "shared address space" in (refusal("100.100.100.200") or "")
    assert "100.64.0.0/10" in (refusal("100.64.0.0") or "")
    assert "site-local" in (refusal("fec0::1") or "")
    assert "outside the global unicast" in (refusal("4000::1") or "")
    assert "outside the global unicast" in (refusal("1234::1") or "")


def _teredo(server: str, client: str) -> IPv6Address:
    flipped = bytes(b ^ 0xFF for b in IPv4Address(client).packed)
    return IPv6Address(b"\x20\x01\x00\x00" + IPv4Address(server).packed + b"\x00" * 4 + flipped)


def _carriers(inner: str) -> dict[str, IPv6Address]:
    v4 = IPv4Address(inner).packed
    return {
        "IPv4-mapped": IPv6Address(b"\x00" * 10 + b"\xff\xff" + v4),
        "NAT64": IPv6Address(bytes.fromhex("0064ff9b") + b"\x00" * 8 + v4),
        "6to4": IPv6Address(b"\x20\x02" + v4 + b"\x00" * 9 + b"\x01"),
        "Teredo client": _teredo("65.54.227.120", inner),
        "Teredo server": _teredo(inner, "8.8.8.8"),
    }


@pytest.mark.parametrize(("block", "what"), IPV4_REFUSED, ids=[str(b) for b, _ in IPV4_REFUSED])
def test_ipv6_forms_carrying_a_refused_ipv4_address_are_refused(block: IPv4Network,
                                                                what: str) -> None:
    for inner in _edges(block):
        for form, address in _carriers(str(inner)).items():
            why = refusal(address)
            assert why is not None and str(inner) in why and what in why, (form, address, why)


@pytest.mark.parametrize("inner", GLOBAL_V4)
def test_ipv6_forms_carrying_a_global_ipv4_address_pass(inner: str) -> None:
    for form, address in _carriers(inner).items():
        assert refusal(address) is None, (form, address)


def test_the_rfc_teredo_example_carries_its_documentation_client() -> None:
    why = refusal("2001:0000:4136:e378:8000:63bf:3fff:fdd2")  # client 192.0.2.45
    assert why is not None and "192.0.2.45" in why and "documentation" in why


def test_zones_and_bad_text() -> None:
    assert "link-local" in (refusal("fe80::1%eth0") or "")
    with pytest.raises(ValueError):
        refusal("not-an-address")


def test_at_least_as_strict_as_the_standard_library() -> None:
    """Every address Python's own tables call non-global (or multicast, which they call global)
    is refused too, except IPv6 forms judged by the global IPv4 address they carry."""
    rng = random.Random(7)
    edges = [a for block, _ in IPV4_REFUSED for a in _edges(block)]
    edges += [a + d for a in list(edges) for d in (-1, 1) if 0 <= int(a) + d < 2**32]
    sample_v4 = edges + [IPv4Address(rng.getrandbits(32)) for _ in range(20000)]
    for address in sample_v4:
        if not address.is_global or address.is_multicast:
            assert refusal(address) is not None, address
    carriers = [IPv6Network(n) for n in ("::ffff:0:0/96", "64:ff9b::/96", "2002::/16",
                                         "2001::/32")]
    v6_edges = [a for block, _ in IPV6_REFUSED for a in _edges(block)]
    sample_v6 = v6_edges + [IPv6Address(rng.getrandbits(128)) for _ in range(20000)]
    sample_v6 += [IPv6Address((0x2000 << 112) | rng.getrandbits(115)) for _ in range(20000)]
    for address in sample_v6:
        if any(address in n for n in carriers):
            continue
        if not address.is_global or address.is_multicast:
            assert refusal(address) is not None, address
