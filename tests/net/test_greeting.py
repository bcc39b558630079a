"""The acceptor's greeting stage (khala/net/acceptor.py, admission.py, deadline.py, ratelog.py)
over loopback sockets: a connection greets before it takes a slot, within one deadline in all;
at the caps the oldest greeting is dropped for the new one, one address pushing out only its
own; refusals are logged at a bounded rate."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from khala.net.acceptor import Acceptor
from khala.net.admission import GreetLimits, Pending
from khala.net.deadline import Deadline, recv_exact
from khala.net.ratelog import RateLimitedLog


class Greeter:
    """Greeting: the 5 bytes b"hello" by the deadline. Serving: b"ok" + the greeting, then held
    until the test releases it. Refused at the slot cap: b"busy"."""

    def __init__(self, limit: int, greet_limits: GreetLimits) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.release = threading.Event()
        self.acceptor = Acceptor(self.listener, limit, self.serve, self.refuse, name="test",
                                 greet=self.greet, greet_limits=greet_limits, what="a test")
        self.opened: list[socket.socket] = []

    @staticmethod
    def greet(conn: socket.socket, deadline: Deadline) -> bytes:
        data = recv_exact(conn, 5, deadline)
        if data != b"hello":
            raise ValueError("not a hello")
        return data

    def serve(self, conn: socket.socket, greeting: Any) -> None:
        conn.sendall(b"ok" + greeting)
        self.release.wait(30)

    @staticmethod
    def refuse(conn: socket.socket) -> None:
        conn.sendall(b"busy")

    def connect(self, source: str = "127.0.0.1") -> socket.socket:
        client = socket.socket()
        client.settimeout(10)
        client.bind((source, 0))
        client.connect(("127.0.0.1", self.port))
        self.opened.append(client)
        return client


@pytest.fixture
def make() -> Iterator[Any]:
    made: list[Greeter] = []

    def build(limit: int = 2, seconds: float = 30, greeting: int = 4, per_peer: int = 2
              ) -> Greeter:
        server = Greeter(limit, GreetLimits(seconds, greeting, per_peer))
        server.acceptor.start()
        made.append(server)
        return server

    yield build
    for server in made:
        server.release.set()
        for client in server.opened:
            client.close()
        server.acceptor.stop()
        server.listener.close()


def read_all(client: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := client.recv(64):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_greeting_connections_hold_no_slot(make: Any) -> None:
    server = make(limit=1)
    silent = [server.connect(f"127.0.0.{i}") for i in (2, 3, 4)]  # greeting, never done
    for client in silent:
        client.sendall(b"he")
    served = server.connect()
    served.sendall(b"hello")
    assert served.recv(7) == b"okhello"  # the one slot is the greeted connection's
    late = server.connect()
    late.sendall(b"hello")
    assert read_all(late) == b"busy"  # greeted, but no slot: refused at once
    assert not any(read_all_nowait(c) for c in silent)  # still greeting, nothing sent


def read_all_nowait(client: socket.socket) -> bytes:
    client.setblocking(False)
    try:
        return client.recv(64)
    except BlockingIOError:
        return b""
    finally:
        client.settimeout(10)


def test_one_deadline_for_the_whole_greeting(make: Any) -> None:
    """Each byte comes well within the deadline of the one before, but the greeting as a whole
    would take 1.5 s: cut off at 0.5 s, never served."""
    server = make(seconds=0.5)
    client = server.connect()
    try:
        for byte in b"hello":
            client.sendall(bytes([byte]))
            time.sleep(0.3)
    except OSError:
        pass  # cut off mid-way
    assert read_all(client) == b""


def test_at_the_per_address_cap_the_oldest_of_that_address_is_dropped(make: Any) -> None:
    server = make(limit=4, greeting=10, per_peer=2)
    first, second = server.connect("127.0.0.2"), server.connect("127.0.0.2")
    other = server.connect("127.0.0.3")
    third = server.connect("127.0.0.2")
    assert read_all(first) == b""  # dropped for the third
    for client in (second, other, third):
        client.sendall(b"hello")
        assert client.recv(7) == b"okhello"


def test_at_the_total_cap_the_oldest_of_all_is_dropped(make: Any) -> None:
    server = make(limit=4, greeting=2, per_peer=2)
    first, second = server.connect("127.0.0.2"), server.connect("127.0.0.3")
    newest = server.connect("127.0.0.4")
    assert read_all(first) == b""
    for client in (second, newest):
        client.sendall(b"hello")
        assert client.recv(7) == b"okhello"


def test_pending_bookkeeping() -> None:
    pending: Pending[str] = Pending(limit=3, per_peer=2)
    assert pending.admit("a1", "A") == [] and pending.admit("b1", "B") == []
    assert pending.admit("a2", "A") == []
    assert pending.admit("a3", "A") == ["a1"]  # A's own oldest, not b1
    assert pending.admit("c1", "C") == ["b1"]  # the oldest of all
    assert len(pending) == 3
    assert not pending.leave("a1") and pending.leave("a2")
    assert pending.admit("a4", "A") == []  # A has one greeting again
    with pytest.raises(ValueError):
        GreetLimits(0, 1, 1)


def test_rate_limited_log_counts_what_it_leaves_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    events = RateLimitedLog(logging.getLogger("t"), interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t"):
        logged = [events.log(logging.WARNING, "k", "refused %s", i) for i in range(50)]
        assert events.log(logging.WARNING, "other", "another kind")
        now[0] = 10.5
        assert events.log(logging.WARNING, "k", "refused %s", 50)
    assert logged == [True] + [False] * 49
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0", "another kind", "refused 50 (and 49 more like it in the last 10 s)"]
