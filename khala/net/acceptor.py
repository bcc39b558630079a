"""A bounded TCP acceptor: each connection served on a thread of its own, at most `limit` at
once. At the cap a new connection is accepted and refused at once — the server's `refuse` tells
the client it is busy (or just closes it) — so a client never waits in the listen backlog for a
slot that may not free for minutes: it hears at once and can go elsewhere (another judicator) or
come back. Out of file descriptors (or kernel memory) the loop backs off (50 ms doubling to 1 s)
instead of spinning on accept.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

ACCEPT_POLL_SECONDS = 0.5  # the loop sees stop() within this long
EMFILE_BACKOFF_FIRST, EMFILE_BACKOFF_MAX = 0.05, 1.0
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def close_quietly(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass


class Acceptor:
    """Serves `listener` (bound and listening) from a daemon thread: `serve(conn)` per
    connection in a thread of its own, the connection closed after it; `refuse(conn)` at the
    cap (then closed)."""

    def __init__(self, listener: socket.socket, limit: int,
                 serve: Callable[[socket.socket], None],
                 refuse: Callable[[socket.socket], None] = close_quietly,
                 name: str = "khala-accept") -> None:
        if limit < 1:
            raise ValueError("a connection limit must be at least 1")
        self._listener = listener
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self._slots = threading.BoundedSemaphore(limit)
        self._serve, self._refuse = serve, refuse
        self._name = name
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = ACCEPT_POLL_SECONDS * 4) -> None:
        """Take no more connections (served ones go on); waits up to `wait` s for the loop."""
        self._stopped.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(wait)

    def _loop(self) -> None:
        backoff = EMFILE_BACKOFF_FIRST
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopped.is_set():
                    return
                if exc.errno in RESOURCE_ERRNOS:
                    if backoff == EMFILE_BACKOFF_FIRST:
                        log.warning("%s: cannot accept connections: %s; backing off",
                                    self._name, exc)
                    self._stopped.wait(backoff)
                    backoff = min(backoff * 2, EMFILE_BACKOFF_MAX)
                else:
                    log.warning("%s: accept failed: %s", self._name, exc)
                    self._stopped.wait(EMFILE_BACKOFF_FIRST)
                continue
            backoff = EMFILE_BACKOFF_FIRST
            conn.settimeout(None)  # not the listener's poll timeout: each server sets its own
            self._hand_over(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        if not self._slots.acquire(blocking=False):
            self._busy(conn)
            return
        try:
            threading.Thread(target=self._run, args=(conn,), daemon=True,
                             name=f"{self._name}-conn").start()
        except RuntimeError as exc:  # cannot start a thread: refuse this client
            log.warning("%s: cannot serve a connection: %s", self._name, exc)
            self._slots.release()
            self._busy(conn)

    def _busy(self, conn: socket.socket) -> None:
        try:
            self._refuse(conn)
        except Exception:
            log.debug("%s: refusing a connection failed", self._name, exc_info=True)
        finally:
            close_quietly(conn)

    def _run(self, conn: socket.socket) -> None:
        try:
            self._serve(conn)
        except Exception:
            log.exception("%s: a connection failed", self._name)
        finally:
            self._slots.release()  # first: a client that sees this one end finds a slot free
            close_quietly(conn)
