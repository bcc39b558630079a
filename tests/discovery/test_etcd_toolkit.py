"""The etcd toolkit's pure parts (khala/etcd/client.py): the gateway's key encoding and the end
of a prefix's range."""

from __future__ import annotations

import pytest

from khala.errors import ConfigError
from khala.etcd.client import Pool, decode, encode, range_end


def test_keys_travel_as_base64_both_ways() -> None:
    assert encode("/khala/leader") == "L2toYWxhL2xlYWRlcg=="
    assert decode(encode("/khala/ünicode")) == "/khala/ünicode".encode()
    assert decode(encode(b"\xff\x00")) == b"\xff\x00"
    assert decode("") == b""


@pytest.mark.parametrize(("prefix", "end"), [
    ("/khala/", b"/khala0"),  # '/' + 1 = '0'
    ("abc", b"abd"),
    ("a\u00ff", "a\u00ff".encode()[:-1] + b"\xc0"),  # the last byte of its UTF-8, plus one
    ("", b"\0"),  # every key
])
def test_the_range_of_a_prefix_ends_after_its_last_key(prefix: str, end: bytes) -> None:
    assert range_end(prefix) == end
    assert prefix.encode() < end


def test_a_pool_needs_endpoints_it_can_use() -> None:
    with pytest.raises(ConfigError):
        Pool([])
    with pytest.raises(ConfigError):
        Pool(["no-port-here"])
    pool = Pool(["127.0.0.1:1", "http://127.0.0.1:2"])
    first = pool.client
    pool.rotate()
    assert pool.client is not first and pool.size == 2
    pool.rotate()
    assert pool.client is first
    pool.close()
