"""No client input grows the label sets of any node's metrics: invented HTTP methods, paths and
Thrift method names sent to a real gateway and judicator leave each node's series as they were
(a fixed set, khala/metrics/labels.py), and every label value is one of the fixed values."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from khala.cli.up import free_port
from khala.metrics.labels import HTTP_METHODS, HTTP_STATUSES, OTHER, UNMATCHED
from khala.rpc import judicator_thrift
from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    c = Cluster(tmp_path_factory.mktemp("labels"))
    port = free_port()
    try:
        c.start_judicator(metrics_listen=f"127.0.0.1:{port}")
        c.start_gateway(workers=2)
        yield {"cluster": c, "judicator": f"http://127.0.0.1:{port}/metrics",
               "gateway": f"{c.gateway_url}/metrics"}
    finally:
        c.stop()


def series(url: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    text = requests.get(url, timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items())))
            for family in text_string_to_metric_families(text) for s in family.samples}


def label_values(found: set[Any], label: str) -> set[str]:
    return {dict(labels)[label] for _, labels in found if label in dict(labels)}


def invented_http(c: Cluster, round_: int) -> None:
    host, port = "127.0.0.1", c.gateways[0].port
    for i in range(25):
        method = f"X{round_}INVENTED{chr(65 + i)}"
        with socket.create_connection((host, port), timeout=10) as conn:
            conn.sendall(f"{method} /api/v2/tasks/r{round_}n{i} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            assert conn.recv(100).startswith(b"HTTP/1.1 ")  # answered (405/400), not hung
        requests.get(f"{c.gateway_url}/no/such/path/{round_}/{i}", timeout=10)
        requests.get(f"{c.gateway_url}/api/v2/tasks/r{round_}g{i}", timeout=10)  # 404
        requests.request("PATCH", f"{c.gateway_url}/api/v2/tasks/r{round_}x{i}", timeout=10)


def invented_rpc(c: Cluster, round_: int) -> None:
    """Thrift calls of methods the IDL does not have (binary protocol, strict framing)."""
    for i in range(25):
        name = f"invented_{round_}_{i}".encode()
        message = struct.pack("!iI", -2147418111, len(name)) + name + struct.pack("!i", i)
        with socket.create_connection(("127.0.0.1", c.judicators[0].port), timeout=10) as conn:
            conn.sendall(message + b"\x00")  # empty argument struct
            assert conn.recv(4)  # the judicator answers (an application exception)
    with socket.create_connection(("127.0.0.1", c.judicators[0].port), timeout=10):
        pass
    c.rpc().ping()


def test_invented_input_adds_no_series(env: dict[str, Any]) -> None:
    c = env["cluster"]
    requests.get(f"{c.gateway_url}/api/v2/tasks", timeout=10)
    series(env["gateway"])  # the scrape's own series exists from here on
    invented_http(c, 0)
    invented_rpc(c, 0)
    first = {node: series(env[node]) for node in ("gateway", "judicator")}
    invented_http(c, 1)
    invented_rpc(c, 1)
    second = {node: series(env[node]) for node in ("gateway", "judicator")}
    # a second round of new methods, paths and names: no new series
    assert second == first, {n: second[n] ^ first[n] for n in first}

    gateway = second["gateway"]
    assert label_values(gateway, "method") <= HTTP_METHODS | {OTHER}
    assert OTHER in label_values(gateway, "method")
    assert label_values(gateway, "status") <= HTTP_STATUSES | {OTHER}
    routes = label_values(gateway, "route")
    assert UNMATCHED in routes and "/api/v2/tasks/<id>" in routes
    assert not any("r0" in r or "r1" in r or "/no/such" in r for r in routes), routes
    judicator = second["judicator"]
    idl = set(judicator_thrift.Judicator.thrift_services)
    assert label_values(judicator, "method") <= idl | {OTHER}
    assert "ping" in label_values(judicator, "method")
