"""One HTTP/1.1 POST under one deadline, for webhooks: connecting (to addresses the caller
already resolved and vetted, so what is called is what was checked), the TLS handshake, sending
and reading the answer's status all share the time given — a receiver that takes or gives one
byte a second cannot hold the sender past it — and the answer's head is read up to MAX_HEAD
bytes, its body not at all (only the status counts). No redirect is followed, no proxy used."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult

from khala.net.deadline import Deadline, send_all

#: Most bytes of an answer's status line and headers read (interim 1xx heads included).
MAX_HEAD = 16 * 1024

Address = tuple[int, tuple[object, ...]]  # (family, sockaddr) as getaddrinfo gives them


class PostError(OSError):
    """The POST got no usable answer (refused, reset, not HTTP, too long a head)."""


@dataclass(frozen=True)
class Request:
    url: SplitResult
    body: bytes
    headers: dict[str, str]

    def encode(self) -> bytes:
        target = (self.url.path or "/") + (f"?{self.url.query}" if self.url.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {self.url.netloc}",
                 f"Content-Length: {len(self.body)}", "Connection: close",
                 *(f"{name}: {value}" for name, value in self.headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def post(request: Request, addresses: list[Address], deadline: Deadline) -> int:
    """POST `request` to the first of `addresses` that accepts a connection; its HTTP status.
    TimeoutError when the deadline passes first; PostError or OSError otherwise."""
    sock = _connect(addresses, deadline)
    try:
        if request.url.scheme == "https":
            sock = _tls(sock, request.url.hostname or "", deadline)
        send_all(sock, request.encode(), deadline)
        return _status(sock, deadline)
    finally:
        sock.close()


def _connect(addresses: list[Address], deadline: Deadline) -> socket.socket:
    error: OSError = PostError("no address to connect to")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            deadline.arm(sock)
            sock.connect(sockaddr)
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def _tls(sock: socket.socket, hostname: str, deadline: Deadline) -> socket.socket:
    wrapped = ssl.create_default_context().wrap_socket(
        sock, server_hostname=hostname, do_handshake_on_connect=False)
    deadline.arm(wrapped)
    wrapped.do_handshake()
    return wrapped


def _status(sock: socket.socket, deadline: Deadline) -> int:
    """The status of the first final (non-1xx) answer head, read within MAX_HEAD bytes (all
    heads together)."""
    data = b""
    total = 0
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if total >= MAX_HEAD:
                raise PostError(f"answer head longer than {MAX_HEAD} bytes")
            deadline.arm(sock)
            part = sock.recv(MAX_HEAD - total)
            if not part:
                raise PostError("the receiver closed the connection without an answer")
            data += part
            total += len(part)
            continue
        status = _parse_status(data[:end].split(b"\r\n", 1)[0])
        if not 100 <= status < 200:
            return status
        data = data[end + 4:]  # an interim answer (100 Continue, 103 Early Hints): skip it


def _parse_status(line: bytes) -> int:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise PostError(f"not an HTTP answer: {line[:80]!r}")
    return int(parts[1])
