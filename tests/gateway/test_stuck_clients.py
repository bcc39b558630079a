"""Clients that hold a gateway's threads cannot stop it (real gateways under gunicorn).

- Long-polls: 40 clients holding `?wait=` on a running task take at most `max_waits` threads
  per worker; the others are answered 429 with Retry-After at once, and `/api/test` answers.
- Clients that never read: an answer of 16 MB to clients with a 4 KiB receive buffer, an event
  stream and a pow-1 session of the same output: each is cut off (reset) once a write was not
  taken within `write_timeout`, and its thread (and stream slot) serves others again.
- Clients that never close: answered with `Connection: close`, they do not stall the worker's
  event loop while it waits for their close.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from websockets.sync.client import connect
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration

T = 30  # seconds any single answer may take (a bound for a hang, never a figure)
WRITE_TIMEOUT = 3.0
# 4 MB on each of the four streams: an answer of 16 MB with no_truncate (result_limit 4 MiB)
BIG = ("head -c 4000000 /dev/zero | tr '\\0' a; "
       "head -c 4000000 /dev/zero | tr '\\0' b >&2")
CUT = select.POLLHUP | select.POLLERR | select.POLLRDHUP


def until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def v2(c: Cluster, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, c.gateway_url + path, timeout=T, **kw)


def submit_v2(c: Cluster, compile_command: str, command: str, timeout: int = 60) -> str:
    body = {"compile": {"command": compile_command, "timeout": timeout},
            "execute": {"command": command, "timeout": timeout}}
    reply = v2(c, "POST", "/api/v2/tasks", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()["data"]["id"]  # type: ignore[no-any-return]


def finished(c: Cluster, task_id: str) -> dict[str, Any]:
    reply = requests.get(f"{c.gateway_url}/api/v2/tasks/{task_id}?wait=60", timeout=90)
    assert reply.status_code == 200 and reply.json()["data"]["done"], (reply.text, c.logs())
    return reply.json()["data"]  # type: ignore[no-any-return]


def stuck_socket(port: int, request: bytes) -> socket.socket:
    """A client with a 4 KiB receive buffer that sends `request` and never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(T)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    return sock


def answered(sock: socket.socket, status: bytes) -> bool:
    """Whether the answer begins with `status` (its first bytes are read; no more)."""
    head = b""
    while len(head) < 12:
        part = sock.recv(12 - len(head))
        if not part:
            break
        head += part
    return head.startswith(b"HTTP/1.1 " + status)


def cut_off(sock: socket.socket, seconds: float = 60) -> bool:
    """Whether the gateway closes `sock` (reset or end) within `seconds`, unread."""
    poller = select.poll()
    poller.register(sock, CUT)
    return bool(poller.poll(seconds * 1000))


def gateway_port(c: Cluster) -> int:
    port = c.gateways[0].port
    assert port is not None
    return port


@pytest.fixture(scope="module")
def big_output(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    """A cluster whose gateway (1 worker × 4 threads, one live stream) cuts off a client after
    WRITE_TIMEOUT, and a finished task that printed 4 MB on each stream. (Each test leaves it
    as it found it: its stuck clients are cut off before it ends.)"""
    c = Cluster(tmp_path_factory.mktemp("stuck"))
    try:
        c.start_judicator()
        c.start_executor(slots=1)
        c.start_gateway(workers=1, threads=4, max_streams=1, write_timeout=WRITE_TIMEOUT)
        task = finished(c, submit_v2(c, BIG, BIG))
        assert task["status"] == "success", task
        yield c, task["seed_id"]
    finally:
        c.stop()


# ----------------------------------------------------------------------------- long-polls


def test_waiting_clients_leave_threads_for_other_requests(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator()
    c.start_executor(slots=2)
    workers, max_waits = 2, 2  # the defaults: 2 workers × 8 threads, 2 waits per worker
    c.start_gateway(workers=workers, threads=8)
    done_id = submit_v2(c, "true", "true")
    finished(c, done_id)
    running = submit_v2(c, "true", "sleep 300", timeout=400)
    assert until(lambda: v2(c, "GET", f"/api/v2/tasks/{running}").json()["data"]["status"]
                 == "running", T)

    answers: list[requests.Response] = []
    lock = threading.Lock()

    def hold() -> None:
        reply = requests.get(f"{c.gateway_url}/api/v2/tasks/{running}?wait=60", timeout=120)
        with lock:
            answers.append(reply)

    def refused() -> list[requests.Response]:
        with lock:
            return [a for a in answers if a.status_code == 429]

    clients = [threading.Thread(target=hold, daemon=True) for _ in range(40)]
    for client in clients:
        client.start()
    try:
        held_at_most = workers * max_waits
        assert until(lambda: len(refused()) >= 40 - held_at_most, 60), (
            [a.status_code for a in answers], c.logs())
        assert v2(c, "GET", "/api/test").text == "Khala gateway server is working."
        # a wait on a done task is answered at once, even with every wait slot taken
        done = requests.get(f"{c.gateway_url}/api/v2/tasks/{done_id}?wait=60", timeout=T)
        assert done.status_code == 200 and done.json()["data"]["done"], done.text
    finally:
        v2(c, "POST", f"/api/v2/tasks/{running}/cancel")  # ends the waits that were held
        for client in clients:
            client.join(90)
    held = [a for a in answers if a.status_code != 429]
    assert 1 <= len(held) <= held_at_most and len(answers) == 40, [a.status_code for a in answers]
    assert all(a.status_code == 200 and a.json()["data"]["status"] == "cancelled"
               for a in held), [a.text for a in held]
    for reply in refused():
        assert reply.headers["Retry-After"] == "1"
        assert reply.json()["errors"][0]["status"] == "429", reply.text


# ----------------------------------------------------------------------------- slow readers


def test_clients_that_never_read_their_answer_are_cut_off(
        big_output: tuple[Cluster, str]) -> None:
    c, seed_id = big_output
    port = gateway_port(c)
    request = (f"GET /api/task?id={seed_id}&no_truncate=1 HTTP/1.1\r\nHost: x\r\n\r\n").encode()
    stuck = [stuck_socket(port, request) for _ in range(6)]  # more than the 4 threads
    try:
        for sock in stuck:
            assert answered(sock, b"200"), c.logs()
            assert cut_off(sock), c.logs()
        assert v2(c, "GET", "/api/test").status_code == 200
        whole = v2(c, "GET", f"/api/task?id={seed_id}&no_truncate=1").json()
        assert whole["task"]["result"]["execute_error"] == "b" * 4000000
    finally:
        for sock in stuck:
            sock.close()
    assert "cut off" in c.gateways[0].log()


def test_a_stuck_event_stream_is_cut_off_and_frees_its_slot(
        big_output: tuple[Cluster, str]) -> None:
    c, seed_id = big_output
    sock = stuck_socket(gateway_port(c), (f"GET /api/v2/tasks/{seed_id}/events HTTP/1.1\r\n"
                                          "Host: x\r\n\r\n").encode())
    try:
        assert answered(sock, b"200"), c.logs()
        assert cut_off(sock), c.logs()
    finally:
        sock.close()
    with requests.get(f"{c.gateway_url}/api/v2/tasks/{seed_id}/events", stream=True,
                      timeout=T) as again:  # the one stream slot is free again
        assert again.status_code == 200, again.text
        kinds = [line for line in again.iter_lines() if line.startswith(b"event: ")]
    assert kinds[0] == b"event: status" and kinds[-1] == b"event: task"


def pow_upgrade() -> bytes:
    """A pow-1 upgrade request (its answer is never read)."""
    return (b"GET /api/v2/pow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: pow-1\r\n\r\n")


def test_a_stuck_pow_client_is_cut_off_and_frees_its_slot(
        big_output: tuple[Cluster, str]) -> None:
    c, seed_id = big_output
    port = gateway_port(c)
    call = json.dumps({"call": "attach", "params": [seed_id]}).encode()
    frame = Connection(ConnectionType.CLIENT).send(BytesMessage(data=call))
    sock = stuck_socket(port, pow_upgrade())
    try:
        assert answered(sock, b"101"), c.logs()
        sock.sendall(frame)  # the call; nothing more is read
        assert cut_off(sock), c.logs()
    finally:
        sock.close()
    url = c.gateway_url.replace("http://", "ws://") + "/api/v2/pow"
    with connect(url, subprotocols=["pow-1"], max_size=None) as ws:  # the slot is free again
        ws.send(call)
        text = ""
        while True:
            message = ws.recv(timeout=T)
            if isinstance(message, bytes):
                break
            text += message
    assert json.loads(message)["status"] == "fulfilled"
    assert text.count("a") == text.count("b") == 2 * 4000000  # compile and execute


# ----------------------------------------------------------------------------- closing


def test_clients_that_never_close_do_not_stall_the_worker(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator()
    c.start_gateway(workers=1)
    port = gateway_port(c)
    request = b"GET /api/test HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    silent = [stuck_socket(port, request) for _ in range(50)]
    try:
        # each answered, then closed from the gateway's side while it waits for theirs
        for sock in silent:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert v2(c, "GET", "/api/test").status_code == 200
    finally:
        for sock in silent:
            sock.close()
