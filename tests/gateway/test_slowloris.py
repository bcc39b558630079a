"""Slow clients cannot take the gateway down: a bounded loopback slowloris.

150 sockets dribble a byte every half second (100 into a request body, 50 into the request
head) at a real gateway (gunicorn, 2 workers × 8 threads) with `--request-timeout 3`. Meanwhile
`/api/test` must keep answering promptly, and every slow client must be cut off (408, then
closed) soon after its 3 s.
"""

from __future__ import annotations

import selectors
import socket
import time
from typing import Any

import requests

from khala.cli.up import free_port, wait_port

REQUEST_TIMEOUT = 3.0
BODY_CLIENTS = 100
HEAD_CLIENTS = 50
PROMPT = 2.0  # seconds /api/test may take under the attack (16 threads, 150 slow clients)
HEAD = (
    b"POST /api/task HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
)


def _open(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(first)
    sock.setblocking(False)
    return sock


def _dribble(sock: socket.socket) -> None:
    try:
        sock.send(b"u")
    except OSError:
        pass  # cut off already: seen by the reader below


def test_slow_clients_are_cut_off_and_do_not_starve_the_gateway(cluster_factory: Any) -> None:
    built = cluster_factory()
    port = free_port()
    argv = built._argv(
        "gateway",
        listen=f"127.0.0.1:{port}",
        judicators="127.0.0.1:1",
        workers=2,
        threads=8,
        request_timeout=REQUEST_TIMEOUT,
    )
    node = built._spawn("gateway", argv, port)
    wait_port(port, node.proc, 30)
    base = f"http://127.0.0.1:{port}"
    assert requests.get(base + "/api/test", timeout=10).status_code == 200

    slow = [_open(port, HEAD) for _ in range(BODY_CLIENTS)]
    slow += [_open(port, b"GET /api/test HTTP/1.1\r\n") for _ in range(HEAD_CLIENTS)]
    started = time.monotonic()
    selector = selectors.DefaultSelector()
    for sock in slow:
        selector.register(sock, selectors.EVENT_READ)
    answers: dict[socket.socket, bytes] = {sock: b"" for sock in slow}
    closed_at: dict[socket.socket, float] = {}
    latencies: list[float] = []
    try:
        # Bounded: the attack lasts until every slow client is cut off, at most 3 × the timeout.
        while len(closed_at) < len(slow) and time.monotonic() - started < 3 * REQUEST_TIMEOUT:
            for sock in slow:
                if sock not in closed_at:
                    _dribble(sock)
            t0 = time.monotonic()
            reply = requests.get(base + "/api/test", timeout=10)
            latencies.append(time.monotonic() - t0)
            assert reply.status_code == 200 and reply.text == "Khala gateway server is working."
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                answers[sock] += data
                if not data:
                    closed_at[sock] = time.monotonic() - started
                    selector.unregister(sock)
        assert max(latencies) < PROMPT, latencies
        assert len(latencies) >= 2 * REQUEST_TIMEOUT  # it kept answering throughout
        assert len(closed_at) == len(slow), f"{len(slow) - len(closed_at)} slow clients still open"
        assert min(closed_at.values()) >= REQUEST_TIMEOUT - 0.5  # not cut before the timeout
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers.values()), set(answers.values())
    finally:
        selector.close()
        for sock in slow:
            sock.close()
    node.signal(15)
    assert node.wait(20) == 0, node.log()
