"""One deadline for a whole exchange on a socket (a handshake, a first frame, a webhook's try),
not a timeout per operation: a peer that sends or takes one byte at a time, each well within a
per-read timeout, is still cut off when the exchange's time is up."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


class Deadline:
    """`seconds` from now (by `clock`). `arm(sock)` gives the socket's next operation what is
    left, or raises TimeoutError once nothing is."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._at = clock() + seconds

    def left(self) -> float:
        return max(0.0, self._at - self._clock())

    def arm(self, sock: socket.socket) -> None:
        left = self.left()
        if left <= 0:
            raise TimeoutError(f"not done within {self.seconds:g} s")
        sock.settimeout(left)


def recv_exact(sock: socket.socket, size: int, deadline: Deadline) -> bytes:
    """Exactly `size` bytes by the deadline; EOFError if the peer closes first, TimeoutError
    when the time is up."""
    parts: list[bytes] = []
    left = size
    while left:
        deadline.arm(sock)
        part = sock.recv(min(left, 65536))
        if not part:
            raise EOFError(f"connection closed after {size - left} of {size} bytes")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def send_all(sock: socket.socket, data: bytes, deadline: Deadline) -> None:
    """All of `data` by the deadline (each send gets only what is left of it: also on TLS
    sockets, whose own sendall gives the full timeout to every piece)."""
    view = memoryview(data)
    while view:
        deadline.arm(sock)
        sent = sock.send(view)
        view = view[sent:]
