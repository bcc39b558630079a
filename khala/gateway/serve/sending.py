"""Writing to a client with a deadline for the whole write, not for each send.

A blocking `sendall` to a client that does not read waits forever, holding the thread; a socket
timeout bounds each send only, so a client that takes a few bytes now and then keeps it going
for as long as it likes. `send_all` gives up at a deadline however the bytes were taken, and
`cut_off` makes the close that follows abortive (RST), so the kernel drops what the client
never took instead of keeping it to retry.

Each send is made non-blocking by its flag (MSG_DONTWAIT), not by the socket's mode: another
thread may be blocked reading the same socket (a websocket's reader).
"""

from __future__ import annotations

import errno
import math
import select
import socket
import struct
import time
from typing import Any

ABORT = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 seconds: close() resets the connection


class WriteTimeout(ConnectionResetError):
    """A client did not take a write by its deadline; the connection is to be cut off. (A
    ConnectionResetError, so servers treat it as the client gone, which it is to them.)"""

    def __init__(self, seconds: float) -> None:
        super().__init__(errno.ECONNRESET, f"the client took no write within {seconds:g} s")


def send_all(sock: Any, data: bytes | bytearray | memoryview, deadline: float) -> None:
    """Send every byte of `data` by the monotonic time `deadline`, else raise WriteTimeout."""
    view = memoryview(data).cast("B")
    if not view:
        return
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    started = time.monotonic()
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WriteTimeout(deadline - started)
        if not poller.poll(math.ceil(remaining * 1000)):
            continue
        try:
            sent = sock.send(view, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            continue
        view = view[sent:]


def cut_off(sock: Any) -> None:
    """Make the socket's close abortive: unsent bytes are dropped, the peer gets a reset."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, ABORT)
    except OSError:
        pass  # closed already
