"""Webhook receivers that answer slowly or without end, through real nodes: a receiver dripping
its answer one byte a second holds up no other host's webhook, holds at most
`webhook_per_host` senders, and each try at it ends at `webhook_timeout` in all; an answer
head without end is cut at its bound."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration

TIMEOUT = 3  # webhook_timeout of the judicator: seconds per try, in all


class Receiver:
    """A raw HTTP receiver on `host`: reads each request whole, then answers with `answer`
    (an iterator of byte strings, sent `pace` seconds apart) until the client goes away."""

    def __init__(self, host: str, answer: Any, pace: float) -> None:
        self.answer, self.pace = answer, pace
        self.listener = socket.create_server((host, 0))
        self.url = f"http://{host}:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()  # connections the sender has not closed
        self.most_open = self.requests = 0
        self.paths: list[str] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:  # the sender closed its earlier ones before it connected again
                self.conns = {c for c in self.conns if not _closed(c)} | {conn}
                self.most_open = max(self.most_open, len(self.conns))
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._read_request(conn)
            for part in self.answer():
                if self._gone(conn) or self.stopped.is_set():
                    break
                conn.sendall(part)
        except OSError:
            pass  # the sender gave up: that is what we want to see
        finally:
            with self.lock:
                self.conns.discard(conn)
            conn.close()

    def _gone(self, conn: socket.socket) -> bool:
        """Wait `pace` seconds; whether the sender closed the connection meanwhile."""
        readable, _, _ = select.select([conn], [], [], self.pace)
        return bool(readable) and not conn.recv(1)

    def _read_request(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536) or b"\r\n\r\n"
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536) or b" " * length
        with self.lock:
            self.requests += 1
            self.paths.append(head.split(b" ")[1].decode())

    def open_now(self) -> int:
        with self.lock:
            return sum(not _closed(c) for c in self.conns)

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


def _closed(conn: socket.socket) -> bool:
    """Whether the sender closed `conn` (a look at it that takes nothing from it)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def dripping() -> Iterator[bytes]:
    """One byte a second, for ever: a status line, then a header without end."""
    text = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 100_000
    for byte in text:
        yield bytes([byte])


def endless_head() -> Iterator[bytes]:
    """A well-formed head that never ends, as fast as the sender reads (up to 64 MiB)."""
    yield b"HTTP/1.1 200 OK\r\n"
    for _ in range(64 * 1024):
        yield b"X-Pad: " + b"p" * 1015 + b"\r\n"


def at_once() -> Iterator[bytes]:
    yield b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("pool"))
    try:
        c.start_judicator(webhook_allow_internal="true", webhook_timeout=TIMEOUT,
                          webhook_tries=2, webhook_backoff=0.3)
        c.start_executor(slots=2)
        c.start_gateway()
        yield c
    finally:
        c.stop()


def submit(c: Cluster, url: str) -> str:
    body = {"compile": {"command": "true"}, "execute": {"command": "true", "timeout": 10},
            "callback_url": url}
    reply = requests.post(f"{c.gateway_url}/api/v2/tasks", json=body, timeout=30)
    assert reply.status_code == 201, reply.text
    return reply.json()["data"]["id"]  # type: ignore[no-any-return]


def webhook(c: Cluster, task_id: str) -> dict[str, Any]:
    task = requests.get(f"{c.gateway_url}/api/v2/tasks/{task_id}", timeout=30).json()["data"]
    return task["webhook"] or {}  # type: ignore[no-any-return]


def settled(c: Cluster, task_id: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while (hook := webhook(c, task_id)).get("state") not in ("delivered", "failed"):
        assert time.monotonic() < deadline, (hook, c.logs())
        time.sleep(0.1)
    return hook


def test_a_slow_receiver_holds_up_no_other_webhook(hooked: Cluster) -> None:
    slow = Receiver("127.0.0.2", dripping, 1.0)
    fast = Receiver("127.0.0.3", at_once, 0)
    try:
        slow_ids = [submit(hooked, f"{slow.url}/slow{i}") for i in range(4)]
        deadline = time.monotonic() + 60
        while slow.open_now() < 1:  # the leader is sending to it
            assert time.monotonic() < deadline, hooked.logs()
            time.sleep(0.05)
        fast_id = submit(hooked, f"{fast.url}/fast")
        delivered = settled(hooked, fast_id)
        busy = slow.open_now()
        assert delivered["state"] == "delivered" and delivered["last_status"] == 204, delivered
        assert busy > 0  # delivered while the slow receiver still dripped
        for task_id in slow_ids:
            outcome = settled(hooked, task_id)
            assert outcome["state"] == "failed" and outcome["attempts"] == 2, outcome
            assert f"not answered within {TIMEOUT:g} s" in outcome["last_error"], outcome
    finally:
        slow.close()
        fast.close()
    assert slow.most_open == 2, slow.most_open  # webhook_per_host
    assert slow.requests == 8  # every try, none lost to the per-host wait


def test_an_answer_head_without_end_is_cut(hooked: Cluster) -> None:
    endless = Receiver("127.0.0.4", endless_head, 0)
    try:
        outcome = settled(hooked, submit(hooked, f"{endless.url}/endless"))
    finally:
        endless.close()
    assert outcome["state"] == "failed", outcome
    assert "answer head longer than 16384 bytes" in outcome["last_error"], outcome
