"""Node-authentication handshakes cannot be dripped: against a real judicator with a cluster
secret, hundreds of connections sending one handshake byte every 1.5 s neither keep a node out
(a gateway and an executor started in the middle of the attack connect and run a task) nor hold
a connection past the handshake deadline; refusals are logged at a bounded rate."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from khala.rpc.auth import MAGIC, NodeAuth, write_secret_file
from khala.rpc.failover import Connection
from tests.fixtures.drip import Drippers

pytestmark = pytest.mark.integration

#: What a dripper sends: the start of a well-formed handshake (magic, a nonce, a name).
HELLO = MAGIC + bytes(32) + b"\x01x"


def secret_file(tmp_path: Path) -> str:
    path = str(tmp_path / "cluster.secret")
    assert write_secret_file(path)
    return path


def closed_unanswered(sock: socket.socket) -> bool:
    """The server closed `sock` without a byte (a reset counts: it closed with our bytes
    unread)."""
    try:
        return sock.recv(64) == b""
    except ConnectionResetError:
        return True


def test_dripped_handshakes_keep_no_node_out(cluster_factory: Any, tmp_path: Path) -> None:
    """300 drippers from one address, and 40 more spread over ten others (4 each): the
    judicator's connection slots (256) stay free for nodes proving the secret, whose handshakes
    the drippers cannot push out (one address only pushes out its own; the spread stays under
    the total cap). A node connects — a probe, a gateway and an executor started in the middle
    of the attack."""
    secret = secret_file(tmp_path)
    c = cluster_factory()
    c.start_judicator(cluster_secret_file=secret)
    port = c.judicators[0].port
    crowd = Drippers(port, ["127.0.0.2"], 300, HELLO, 1.5)
    spread = Drippers(port, [f"127.0.0.{i}" for i in range(3, 13)], 40, HELLO, 1.5)
    crowd.start()
    spread.start()
    try:
        crowd.wait_rounds(3)
        spread.wait_rounds(3)
        auth = NodeAuth.from_file(secret)
        for _ in range(5):  # fresh connections, each its own handshake, during the attack
            probe = Connection(c.judicator_address, 10.0, auth, "probe")
            assert probe.client.ping() == 0
            probe.close()
        c.start_gateway(cluster_secret_file=secret)
        c.start_executor(cluster_secret_file=secret)
        task = c.wait_done(c.submit(execute_command="echo through"))
        assert task["status"] == 5 and task["result"]["execute_output"] == "through\n", task
        assert crowd.open_now() + spread.open_now() > 0  # the attack went on all along
    finally:
        crowd.stop()
        spread.stop()
    assert crowd.dropped > 0 and spread.dropped > 0, "drippers were never cut off"


def test_a_dripped_handshake_is_cut_at_its_deadline(cluster_factory: Any,
                                                     tmp_path: Path) -> None:
    """One deadline for the whole handshake (2 s here), not one per read: a client that sends
    every byte well within the per-read wait is still closed long before it has sent the
    handshake, and the judicator never answers it."""
    c = cluster_factory()
    c.start_judicator(cluster_secret_file=secret_file(tmp_path), handshake_timeout=2)
    sock = socket.create_connection(("127.0.0.1", c.judicators[0].port), timeout=10)
    answered = b""
    cut = False
    try:
        for byte in HELLO:  # 52 bytes, 0.5 s apart: 26 s in all
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            sock.settimeout(0.5)
            try:
                data = sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                cut = True
                break
            if not data:
                cut = True
                break
            answered += data
    finally:
        sock.close()
    assert cut and answered == b"", answered


def test_refusals_are_logged_at_a_bounded_rate(cluster_factory: Any, tmp_path: Path) -> None:
    """200 clients that speak plain Thrift to a judicator requiring the handshake are all
    refused; the log says why, but not 200 times."""
    c = cluster_factory()
    c.start_judicator(cluster_secret_file=secret_file(tmp_path))
    ping = b"\x80\x01\x00\x01\x00\x00\x00\x04ping\x00\x00\x00\x00\x00"
    for _ in range(200):
        with socket.create_connection(("127.0.0.1", c.judicators[0].port), timeout=10) as s:
            s.sendall(ping)
            assert closed_unanswered(s)
    deadline = time.monotonic() + 10
    while "no node-authentication handshake" not in c.judicators[0].log():
        assert time.monotonic() < deadline, c.judicators[0].log()
        time.sleep(0.05)
    lines = [line for line in c.judicators[0].log().splitlines() if "refused" in line]
    assert 1 <= len(lines) <= 5, lines
