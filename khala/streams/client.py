"""The gateway's connection to an executor's stream endpoint (wire.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

from khala.rpc.auth import NodeAuth
from khala.streams import wire
from khala.streams.log import STREAMS

CONNECT_TIMEOUT = 2.0
#: A connection silent this long is taken as lost (the endpoint sends at least every second
#: while the task's status or output moves; an idle task's connection is re-opened).
IDLE_TIMEOUT = 15.0


class StreamConnection:
    """One follow of one task on one executor (`once`: only what the executor holds now, up to
    its `now` frame). `frames()` yields (header, data) until the task's end frame, `now`,
    `unknown`/`busy`, or the connection is lost (FrameError / OSError end
    the iteration). With `want_input`, `sender` names the input's sender (the same on every
    connection of one follower); input goes only after the endpoint's `input` frame, from the
    offset it names. `send_input` / `close_input` may be called from another thread. With
    `auth` (the cluster secret) the connection first proves it to the endpoint, and raises
    AuthError if the endpoint does not prove it back."""

    def __init__(self, address: str, task_id: str, position: dict[str, int],
                 want_input: bool, sender: str = "", auth: NodeAuth | None = None,
                 once: bool = False) -> None:
        host, _, port = address.rpartition(":")
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wire.SOCKET_BUFFER)
        self._sock.settimeout(CONNECT_TIMEOUT)
        try:
            self._sock.connect((host.strip("[]"), int(port)))
        except OSError:
            self._sock.close()
            raise
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(IDLE_TIMEOUT)
        if auth is not None:
            try:
                auth.client_handshake(self._sock, "gateway", peer="stream endpoint")
            except Exception:
                self._sock.close()
                raise
        self._send_lock = threading.Lock()
        self._send({"type": "follow", "task": task_id, "input": want_input, "sender": sender,
                    "position": [position[name] for name in STREAMS], "once": once})

    def _send(self, header: dict[str, Any], data: bytes = b"") -> None:
        with self._send_lock:
            self._sock.sendall(wire.encode(header, data))

    def send_input(self, offset: int, data: bytes) -> None:
        """Send `data`, the sender's input from byte `offset` on."""
        for start in range(0, len(data), wire.MAX_DATA):
            self._send({"type": "input", "offset": offset + start},
                       data[start:start + wire.MAX_DATA])

    def close_input(self, offset: int) -> None:
        """End the input after the sender's first `offset` bytes."""
        self._send({"type": "close", "offset": offset})

    def frames(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        while True:
            try:
                header, data = wire.read_frame(self._sock)
            except (OSError, wire.FrameError):
                return
            yield header, data
            if header["type"] in ("end", "unknown", "busy", "now"):
                return

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
