"""Hostile Thrift clients against a real judicator process (SQLite store): thousands of short
connections, zlib bombs, and headers claiming huge containers or strings. The judicator's
descriptors and memory stay bounded and it keeps answering."""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from khala.model import Code
from khala.rpc import judicator_thrift as T
from tests.fixtures.cluster import Cluster

SHORT_CONNECTIONS = 3000  # the leak was one SQLite connection (2+ fds) per Thrift connection
MIB = 1 << 20


@pytest.fixture
def judicator(cluster_factory: Any) -> Iterator[Cluster]:
    c: Cluster = cluster_factory()
    c.start_judicator()
    yield c


def proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fds(pid: int, at_most: int) -> int:
    """The fd count once connection threads have ended (they close asynchronously)."""
    count = fd_count(pid)
    for _ in range(100):  # bounded: 100 × 0.05 s
        if count <= at_most:
            break
        time.sleep(0.05)
        count = fd_count(pid)
    return count


def call(port: int, message: bytes) -> bytes:
    """Send one raw message; the judicator's raw answer (b"" = it closed the connection)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(message)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed on us mid-message: refused
    return b"".join(chunks)


def header(method: str) -> bytes:
    name = method.encode()
    return struct.pack("!iI", -2147418111, len(name)) + name + struct.pack("!i", 1)


def test_short_connections_do_not_leak(judicator: Cluster) -> None:
    node = judicator.judicators[0]
    client = judicator.rpc()
    assert client.search(None, None, None, None, None, 10, 0).result == Code.OK

    def short_connections(count: int) -> None:
        for _ in range(count):  # each one touches the store, then hangs up
            short = judicator.rpc()
            assert short.get("0" * 24).result == Code.NOT_EXIST
            short.close()

    # The node's own threads (reaper, scheduler, webhooks, metrics) open their store
    # connections once, whenever they first run: a fixed count, not a leak. Warm up first, so
    # the measured growth is what 3,000 more client connections add.
    short_connections(SHORT_CONNECTIONS // 10)
    time.sleep(2.0)  # past the leader's first passes
    before = settled_fds(node.pid, fd_count(node.pid))
    short_connections(SHORT_CONNECTIONS)
    after = settled_fds(node.pid, before + 10)
    print(f"\n{SHORT_CONNECTIONS} short connections: judicator fds {before} → {after}")
    assert after <= before + 10
    assert judicator.rpc().search(None, None, None, None, None, 10, 0).result == Code.OK
    assert "Traceback" not in node.log()


def test_hostile_payloads_keep_memory_bounded(judicator: Cluster) -> None:
    node = judicator.judicators[0]
    port = node.port
    assert port is not None
    judicator.rpc().ping()
    peak_before = proc_status(node.pid, "VmHWM")

    # 1. 8 M empty structs in `report`'s complete list: 8 MB sent, ~1.2 GB if decoded.
    items = 8_000_000
    flood = header("report") + struct.pack("!bhbi", 15, 2, 12, items) + b"\x00" * items + b"\x00"
    assert call(port, flood) == b""  # refused: the connection is closed unanswered

    # 2. A string header claiming 1 GiB, then a few bytes only.
    claim = header("add") + struct.pack("!bhbhi", 12, 1, 11, 1, 1 << 30) + b"x" * 1000
    assert call(port, claim) == b""

    # 3. A zlib bomb in `add`: ~200 KB compressed, 200 MB inflated; refused as too large.
    bomb = zlib.compress(b"\0" * (200 * MIB), 9)
    task = T.Task(
        user=1,
        compile=T.Compile(source=b"", command=zlib.compress(b"true"), timeout=1),
        execute=T.Execute(input=bomb, data=b"", command=zlib.compress(b"true"), timeout=1,
                          standard=b""),
    )  # fmt: skip
    assert judicator.rpc().add(task).result == Code.TOO_LARGE

    peak_after = proc_status(node.pid, "VmHWM")
    print(f"\njudicator peak RSS {peak_before / MIB:.0f} MiB → {peak_after / MIB:.0f} MiB")
    assert peak_after - peak_before < 100 * MIB
    assert judicator.rpc().search(None, None, None, None, None, 10, 0).result == Code.OK
