"""Which IP addresses are globally routable: the rule behind the callback-URL check (a webhook
may call only the public Internet, never the cluster's networks). Pure: no DNS, no sockets.

An address is refused unless it is global unicast outside every special-purpose block that is
not globally reachable (the IANA IPv4 and IPv6 special-purpose registries). IPv6 forms that
carry an IPv4 address — IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`), 6to4
(`2002:AABB:CCDD::`) and Teredo (`2001:0::/32`, server and obfuscated client) — are judged by
the IPv4 addresses they carry, as that is where a packet to them ends up.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

Address = IPv4Address | IPv6Address

# IPv4 blocks that are not globally reachable, most specific first, with what they are.
IPV4_REFUSED: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(block), what) for block, what in (
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "private-use"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT, cloud metadata)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private-use"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
        ("192.168.0.0/16", "private-use"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (and broadcast)"),
    )
)

GLOBAL_UNICAST = IPv6Network("2000::/3")
MAPPED = IPv6Network("::ffff:0:0/96")
NAT64 = IPv6Network("64:ff9b::/96")
SIX_TO_FOUR = IPv6Network("2002::/16")
TEREDO = IPv6Network("2001::/32")

# IPv6 blocks that are not globally reachable, checked after the IPv4-carrying forms above.
IPV6_REFUSED: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(block), what) for block, what in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("::ffff:0:0:0/96", "IPv4-translated"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6) SIDs"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)


def refusal(address: Address | str) -> str | None:
    """Why `address` is not globally routable (a short phrase), or None when it is. A string is
    parsed first (an IPv6 zone, `fe80::1%eth0`, is allowed); raises ValueError when it is no
    address."""
    if isinstance(address, str):
        address = ip_address(address)
    if isinstance(address, IPv4Address):
        return _refusal_v4(address)
    return _refusal_v6(address)


def is_global(address: Address | str) -> bool:
    return refusal(address) is None


def _refusal_v4(address: IPv4Address) -> str | None:
    for block, what in IPV4_REFUSED:
        if address in block:
            return f"{what}, {block}"
    return None


def _refusal_v6(address: IPv6Address) -> str | None:
    if address.scope_id:
        address = IPv6Address(address.packed)  # the zone does not change where it routes
    carrier = _carried_v4(address)
    if carrier is not None:
        form, carried = carrier
        for inner in carried:
            why = _refusal_v4(inner)
            if why is not None:
                return f"{form} address carrying {inner}: {why}"
        return None  # every IPv4 address it carries is global
    for block, what in IPV6_REFUSED:
        if address in block:
            return f"{what}, {block}"
    if address not in GLOBAL_UNICAST:
        return f"outside the global unicast space {GLOBAL_UNICAST}"
    return None


def _carried_v4(address: IPv6Address) -> tuple[str, list[IPv4Address]] | None:
    """The IPv4-carrying form of `address` with the IPv4 addresses it carries, or None."""
    packed = address.packed
    if address in MAPPED:
        return "IPv4-mapped", [IPv4Address(packed[12:])]
    if address in NAT64:
        return "NAT64", [IPv4Address(packed[12:])]
    if address in SIX_TO_FOUR:
        return "6to4", [IPv4Address(packed[2:6])]
    if address in TEREDO:  # the server, then the client (stored with every bit flipped)
        client = bytes(b ^ 0xFF for b in packed[12:])
        return "Teredo", [IPv4Address(packed[4:8]), IPv4Address(client)]
    return None
