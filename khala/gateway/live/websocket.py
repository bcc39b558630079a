"""A websocket on a gunicorn connection: the handshake answered on the raw socket, then frames
through wsproto's frame protocol. Reads happen only when `receive` is called, so a client
that sends faster than the server forwards is held back by TCP, never buffered without bound.

The read-ahead worker (serve/worker.py) read the upgrade request (it has no body) before a
thread took it; the view runs in that thread for the websocket's whole life, and marks the
connection so the worker closes it afterwards instead of keeping it alive (HIJACKED).

Every write (the handshake, each frame) must be taken by the client within `write_timeout`
seconds in all (serve/sending.py): a client that stops reading is cut off and the thread freed.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections import deque
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)

from khala.gateway.serve.sending import WriteTimeout, cut_off, send_all
from khala.streams.wire import SOCKET_BUFFER

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RECV_CHUNK = 16 * 1024
#: environ key set on a hijacked connection (the worker closes it after the view).
HIJACKED = "khala.hijacked"


class Closed(Exception):
    """The websocket is closed (by the peer, or the connection was lost)."""


def wants_websocket(environ: dict[str, Any]) -> bool:
    return (environ.get("HTTP_UPGRADE", "").lower() == "websocket"
            and "upgrade" in environ.get("HTTP_CONNECTION", "").lower())


def offered_protocols(environ: dict[str, Any]) -> list[str]:
    text = environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "")
    return [p.strip() for p in text.split(",") if p.strip()]


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def raw_socket(environ: dict[str, Any]) -> socket.socket | None:
    sock = environ.get("gunicorn.socket")
    return getattr(sock, "sock", sock)  # the readahead worker wraps it


class WebSocket:
    """A server-side websocket after the handshake. `receive` in one thread, `send_*` and
    `close` from any."""

    def __init__(self, sock: socket.socket, write_timeout: float) -> None:
        self.sock = sock
        self.write_timeout = write_timeout
        self._proto = Connection(ConnectionType.SERVER)
        self._lock = threading.Lock()
        self._events: deque[Any] = deque()  # parsed, not yet returned (only `receive` uses it)

    @classmethod
    def accept(cls, environ: dict[str, Any], protocol: str, write_timeout: float) -> WebSocket:
        """Answer the upgrade (101) on the raw socket; the caller checked the request."""
        sock = raw_socket(environ)
        if sock is None:
            raise Closed("no socket to upgrade")
        environ[HIJACKED] = True
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "")
        ws = cls(sock, write_timeout)
        ws._send((
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n"
            f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
        return ws

    def _send(self, data: bytes) -> None:
        """Send within the write deadline (waits while a slow client reads: backpressure);
        a client that takes none of it in time is cut off."""
        try:
            send_all(self.sock, data, time.monotonic() + self.write_timeout)
        except WriteTimeout as exc:
            cut_off(self.sock)
            self.shutdown()
            raise Closed(str(exc)) from exc
        except OSError as exc:
            raise Closed(str(exc)) from exc

    def _write(self, event: Any) -> None:
        with self._lock:
            if self._proto.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                raise Closed("websocket closed")
            self._send(self._proto.send(event))

    def send_text(self, text: str) -> None:
        self._write(TextMessage(data=text))

    def send_bytes(self, data: bytes) -> None:
        self._write(BytesMessage(data=data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        try:
            self._write(CloseConnection(code=code, reason=reason))
        except Closed:
            pass

    def receive(self) -> Message[Any]:
        """The next data frame (a fragment of a message: check `message_finished`); answers
        pings; raises Closed at the end."""
        while True:
            with self._lock:
                self._events.extend(self._proto.events())
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Message):
                    return event
                if isinstance(event, Ping):
                    self._write(event.response())
                elif isinstance(event, CloseConnection):
                    with self._lock:
                        if self._proto.state == ConnectionState.REMOTE_CLOSING:
                            self._send(self._proto.send(event.response()))
                    raise Closed(f"closed by the client ({event.code})")
            try:
                data = self.sock.recv(RECV_CHUNK)
            except OSError:
                data = b""
            with self._lock:
                if self._proto.state == ConnectionState.CLOSED:
                    raise Closed("websocket closed")
                self._proto.receive_data(data or None)

    def shutdown(self) -> None:
        """Drop the connection (after the close handshake, or when it is lost)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
