"""The webhook's HTTP POST (khala/net/httppost.py) against raw loopback receivers: the request
it sends, the status of the final answer (interim 1xx skipped), one deadline for the whole
exchange, and a bounded answer head."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from khala.net.deadline import Deadline
from khala.net.httppost import MAX_HEAD, PostError, Request, post


class Receiver:
    """Accepts one connection, records the request bytes, answers with `answer(conn)`."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.request = b""
        self.answer = answer
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(65536)
            head, _, body = self.request.partition(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += conn.recv(65536)
            self.request = head + b"\r\n\r\n" + body
            try:
                self.answer(conn)
            except OSError:
                pass

    def call(self, seconds: float = 10) -> int:
        url = urlsplit(f"http://127.0.0.1:{self.port}/hook?x=1")
        request = Request(url, b'{"data": 1}', {"X-Khala-Signature": "sha256=ab"})
        return post(request, [(socket.AF_INET, ("127.0.0.1", self.port))], Deadline(seconds))


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.listener.close()


def answering(*parts: bytes, pace: float = 0) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        for part in parts:
            time.sleep(pace)
            conn.sendall(part)
    return answer


def test_the_request_and_the_final_status(receivers: list[Receiver]) -> None:
    receiver = Receiver(answering(b"HTTP/1.1 100 Continue\r\n\r\n",
                                  b"HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\nbody"))
    receivers.append(receiver)
    assert receiver.call() == 202
    head, _, body = receiver.request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{receiver.port}".encode() in lines
    assert b"Content-Length: 11" in lines and b"Connection: close" in lines
    assert b"X-Khala-Signature: sha256=ab" in lines and body == b'{"data": 1}'


def test_a_receiver_dripping_its_answer_is_cut_at_the_deadline(
        receivers: list[Receiver]) -> None:
    """Each byte within any per-read timeout, the whole never within the deadline."""
    receiver = Receiver(answering(*(bytes([b]) for b in b"HTTP/1.1 200 OK\r\n" * 10),
                                  pace=0.1))
    receivers.append(receiver)
    with pytest.raises(TimeoutError):
        receiver.call(seconds=0.5)


def test_an_answer_head_is_read_within_its_bound(receivers: list[Receiver]) -> None:
    endless = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * (4 * MAX_HEAD)
    receiver = Receiver(answering(endless))
    receivers.append(receiver)
    with pytest.raises(PostError, match=f"longer than {MAX_HEAD} bytes"):
        receiver.call()


@pytest.mark.parametrize("answer", [b"", b"SSH-2.0-OpenSSH\r\n\r\n"])
def test_no_http_answer_is_an_error(receivers: list[Receiver], answer: bytes) -> None:
    receiver = Receiver(answering(answer))
    receivers.append(receiver)
    with pytest.raises(PostError):
        receiver.call()
