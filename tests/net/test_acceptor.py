"""The bounded TCP acceptor shared by the Thrift server and the stream hub (khala/net/
acceptor.py), over real loopback sockets: at the cap a new connection is refused at once, and a
slot freed is taken by the next connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from khala.net.acceptor import Acceptor


class Server:
    """Each connection is held until the test releases it; refused ones hear b"busy"."""

    def __init__(self, limit: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.release = threading.Event()
        self.served = threading.Semaphore(0)
        self.acceptor = Acceptor(self.listener, limit, self.serve, self.refuse, name="test")

    def serve(self, conn: socket.socket, _greeting: object) -> None:
        conn.sendall(b"hello")
        self.served.release()
        self.release.wait(30)
        if conn.recv(1) == b"x":
            raise RuntimeError("a failing connection must not take the loop down")

    @staticmethod
    def refuse(conn: socket.socket) -> None:
        conn.sendall(b"busy")

    def connect(self) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.opened.append(client)
        return client

    opened: list[socket.socket]


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server(limit=2)
    made.opened = []
    made.acceptor.start()
    yield made
    made.release.set()
    for client in made.opened:
        client.close()
    made.acceptor.stop()
    made.listener.close()


def read_all(client: socket.socket) -> bytes:
    data = b""
    while chunk := client.recv(64):
        data += chunk
    return data


def test_at_the_cap_a_connection_is_refused_at_once_then_a_freed_slot_serves(
    server: Server,
) -> None:
    first, second = server.connect(), server.connect()
    assert first.recv(5) == b"hello" and second.recv(5) == b"hello"
    third = server.connect()
    assert read_all(third) == b"busy"  # answered and closed, not left in the backlog
    first.sendall(b"x")  # this one's server raises: its slot frees all the same
    server.release.set()
    assert read_all(first) == b""
    fourth = server.connect()
    assert fourth.recv(5) == b"hello"


def test_stop_takes_no_more_connections(server: Server) -> None:
    assert server.connect().recv(5) == b"hello"
    server.acceptor.stop()
    late = server.connect()  # the kernel completes it into the backlog; nobody serves it
    late.settimeout(1)
    with pytest.raises(TimeoutError):
        late.recv(5)
    assert server.served.acquire(timeout=1)  # only the first was served
    assert not server.served.acquire(timeout=0.2)


def test_a_limit_below_one_is_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, pytest.raises(ValueError):
        Acceptor(listener, 0, lambda conn, greeting: None)
