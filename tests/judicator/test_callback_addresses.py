"""Callback URLs at addresses that are not globally routable are refused at submission, through
a real gateway and judicator (the classification itself: tests/rules/test_addresses.py)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

REFUSED = (
    "http://100.100.100.200/latest/meta-data/",  # a cloud metadata address (shared space)
    "http://100.64.0.1/x",
    "http://198.18.0.1/x",  # benchmarking
    "http://192.0.0.170/x",
    "http://[fec0::1]/x",  # site-local
    "http://[2002:7f00:1::1]/x",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/x",  # 6to4 of 169.254.169.254
    "http://[::ffff:10.0.0.1]/x",  # IPv4-mapped
    "http://[::ffff:100.100.100.200]/x",
    "http://[64:ff9b::7f00:1]/x",  # NAT64 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/x",  # Teredo, client 10.0.0.1
    "http://[2001:db8::1]/x",
    "http://[4000::1]/x",  # outside the global unicast space
)


def test_callback_urls_at_non_global_addresses_are_refused(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator()
    c.start_gateway()
    for url in REFUSED:
        body = {"compile": {"command": "true"}, "execute": {"command": "true"},
                "callback_url": url}
        reply = requests.post(f"{c.gateway_url}/api/v2/tasks", json=body, timeout=30)
        assert reply.status_code == 422, (url, reply.text)
        detail = reply.json()["errors"][0]["detail"]
        assert "callback_url" in detail and "globally routable" in detail, (url, detail)
    listed = requests.get(f"{c.gateway_url}/api/v2/tasks", timeout=30).json()["data"]
    assert listed == []  # nothing was stored
