"""A gunicorn worker that reads each request whole before the request takes a thread.

gunicorn's gthread worker gives a connection to a thread as soon as its first byte arrives; the
thread then reads the headers and the body with blocking reads. 100 clients sending a byte a
second hold every thread, and even `/api/test` stops answering (a slow-client attack). Here the
worker's event loop reads each request with non-blocking reads into a buffer of its own (kept
in memory up to SPOOL_MEMORY bytes, then in a temporary file) and hands the connection to a
thread only once the request is complete. A request that is not complete `request_timeout`
seconds after the connection opened (or, on a kept-alive connection, after its next request
began) is cut off: answered 408 and closed. A slow client so costs a file descriptor and a
buffer, never a thread, and only for a bounded time; how many a worker holds at once is bounded
by `max_connections` (gunicorn's worker_connections: beyond it the worker stops accepting).

Writing is bounded the same way: a response's writes in all must be taken by the client within
`write_timeout` seconds of its first byte (a stream restarts the window for each message:
`ReadAheadSocket.restart_write_window`), else the connection is cut off (reset) and the thread
is free again (khala/gateway/serve/sending.py). And closing does not wait on the client: a
connection closed after its response lingers for the client's own close on the event loop
(`LINGER` seconds at most) instead of in a blocking read there.

`RequestFraming` (pure, no IO) decides when a request is complete. Requests pipelined behind
another one on the same connection are not supported (no current HTTP client pipelines).
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from khala.gateway.serve.sending import WriteTimeout, cut_off, send_all

log = logging.getLogger(__name__)

#: Bytes of one request's buffer kept in memory; beyond, it spills into a temporary file.
SPOOL_MEMORY = 256 * 1024
#: Largest single non-blocking read of the event loop.
READ_CHUNK = 256 * 1024
#: A request head (request line + headers) longer than this is handed on as it is: gunicorn's
#: own limits (limit_request_line, limit_request_fields) answer it with an error.
MAX_HEAD = 128 * 1024
TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
#: Seconds a closed connection waits for the client's own close (and bytes of it read) before
#: it is closed anyway (a close with unread bytes would reset the end of the response).
LINGER = 2.0
LINGER_DRAIN = 64 * 1024


class RequestFraming:
    """Fed the bytes of one HTTP/1.x request as they arrive; `feed` says when it is complete:
    its head is in and then its whole body (Content-Length), the last chunk of a chunked body,
    or, when the declared body is larger than `max_body`, only the head (the app refuses it
    unread)."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.head = bytearray()
        self.head_done = False
        self.body_left = 0  # bytes of a Content-Length body still to come
        self.chunked = False
        self.tail = b""  # the last bytes of a chunked body seen so far

    def feed(self, data: bytes) -> bool:
        if not self.head_done:
            start = max(0, len(self.head) - 3)
            self.head += data
            end = self.head.find(b"\r\n\r\n", start)
            if end < 0:
                return len(self.head) > MAX_HEAD
            self.head_done = True
            data = bytes(self.head[end + 4 :])
            if not self._frame(bytes(self.head[:end])):
                return True
        if self.chunked:
            self.tail = (self.tail + data)[-5:]
            return self.tail == b"0\r\n\r\n"  # the last chunk, no trailers
        self.body_left -= len(data)
        return self.body_left <= 0

    def _frame(self, head: bytes) -> bool:
        """Read the body's framing from the head; False when there is no body to wait for."""
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                self.chunked = True
            elif name == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    return False  # malformed: gunicorn answers 400
        if self.chunked:
            return True
        if length <= 0 or length > self.max_body:
            return False
        self.body_left = length
        return True


class ReadAheadSocket:
    """A client socket whose first reads come from the request read ahead by the event loop,
    and whose writes have a deadline (`write_timeout` seconds for a response in all, from its
    first write; `restart_write_window` starts a new one, as a stream does for each message).
    A write past its deadline raises WriteTimeout and marks the socket `cut`: its close resets
    the connection."""

    def __init__(self, sock: Any, write_timeout: float) -> None:
        self.sock = sock
        self.write_timeout = write_timeout
        self.cut = False
        self._held: IO[bytes] | None = None
        self._write_deadline: float | None = None

    def hold(self, buffer: IO[bytes]) -> None:
        buffer.seek(0)
        self._held = buffer
        self.restart_write_window()

    def release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self._held is not None:
            data = self._held.read(size)
            if data:
                return data
            self.release()
        return self.sock.recv(size, flags)  # type: ignore[no-any-return]

    def restart_write_window(self) -> None:
        """The next write starts a new deadline (a new response, or a stream's next message)."""
        self._write_deadline = None

    def sendall(self, data: bytes) -> None:
        if self._write_deadline is None:
            self._write_deadline = time.monotonic() + self.write_timeout
        try:
            send_all(self.sock, data, self._write_deadline)
        except WriteTimeout:
            self.cut = True
            cut_off(self.sock)
            log.info("cut off %s: it took no response for %g s", _peer(self.sock),
                     self.write_timeout)
            raise

    def close(self) -> None:
        self.release()
        self.sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _peer(sock: Any) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "a client"


class ClientConn(TConn):  # type: ignore[misc]
    """gunicorn's connection, closed by the worker: a cut-off one at once (reset), a graceful
    close by `linger` on the event loop (gunicorn's own waits for the client in a blocking
    read, on the thread that runs the event loop)."""

    def __init__(self, *args: Any, linger: Callable[[TConn], None]) -> None:
        super().__init__(*args)
        self.linger = linger
        self.drained = 0  # bytes read from it while it lingers

    def close(self, graceful: bool = False) -> None:
        if graceful and not self.sock.cut:
            self.linger(self)
        else:
            self.sock.close()


@dataclass
class Reading:
    """A request being read by the event loop."""

    deadline: float
    framing: RequestFraming
    buffer: IO[bytes] = field(
        default_factory=lambda: tempfile.SpooledTemporaryFile(SPOOL_MEMORY)  # noqa: SIM115 - closed by the worker
    )
    received: int = 0


class ReadAheadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, except that requests are read whole by the event loop (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.app.settings
        self.request_timeout = float(settings.request_timeout)
        self.write_timeout = float(settings.write_timeout)
        self.max_body = int(self.app.max_body)  # the app's body limit (GatewayServer)
        self.reading: dict[TConn, Reading] = {}  # insertion order is deadline order
        self.lingering: dict[TConn, float] = {}  # closing; insertion order is deadline order

    def accept(self, listener: Any) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = ClientConn(self.cfg, client, address, listener.getsockname(), linger=self._linger)
        conn.sock = ReadAheadSocket(conn.sock, self.write_timeout)
        self._start_reading(conn)

    def handle(self, conn: TConn) -> Any:
        """One request on a thread; its response's write deadline starts at its first write."""
        conn.sock.restart_write_window()
        return super().handle(conn)

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        """A kept-alive connection's next request begins: read it ahead too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._start_reading(conn)

    def _start_reading(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        deadline = time.monotonic() + self.request_timeout
        self.reading[conn] = Reading(deadline, RequestFraming(self.max_body))
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self._on_request_readable, conn)
        )

    def _on_request_readable(self, conn: TConn, _sock: Any) -> None:
        reading = self.reading[conn]
        try:
            data = conn.sock.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        reading.buffer.write(data)
        reading.received += len(data)
        if reading.framing.feed(data):
            self.poller.unregister(conn.sock)
            del self.reading[conn]
            conn.sock.hold(reading.buffer)
            conn.data_ready = True
            self.enqueue_req(conn)

    def _drop(self, conn: TConn, answer: bytes = b"") -> None:
        reading = self.reading.pop(conn)
        reading.buffer.close()
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        if answer:
            try:
                conn.sock.sock.send(answer)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def _linger(self, conn: TConn) -> None:
        """Close gracefully without waiting here: end our side, then wait on the event loop
        for the client's close (reading what it still sends) until LINGER seconds passed."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self._on_linger_readable, conn))
        except (OSError, ValueError, KeyError):
            conn.sock.close()
            return
        self.lingering[conn] = time.monotonic() + LINGER

    def _on_linger_readable(self, conn: TConn, _sock: Any) -> None:
        try:
            data = conn.sock.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_DRAIN:
            self._closed(conn)

    def _closed(self, conn: TConn) -> None:
        del self.lingering[conn]
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        conn.sock.close()

    def murder_pending(self) -> None:
        """Called on every turn of the event loop: cut off requests past their deadline, and,
        once the worker stops, connections that have not sent a byte yet; close lingering
        connections past theirs."""
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self.lingering.items()):
            if deadline > now and self.alive:
                break
            self._closed(conn)
        for conn, reading in list(self.reading.items()):
            if reading.deadline <= now:
                self._drop(conn, TIMEOUT_ANSWER)
            elif not self.alive and reading.received == 0:
                self._drop(conn)
            elif self.alive:
                break  # the rest have later deadlines
