"""A bounded TCP acceptor: each connection served on a thread of its own, at most `limit` at
once. At the cap a new connection is accepted and refused at once — the server's `refuse` tells
the client it is busy (or just closes it) — so a client never waits in the listen backlog for a
slot that may not free for minutes: it hears at once and can go elsewhere (another judicator) or
come back. Out of file descriptors (or kernel memory) the loop backs off (50 ms doubling to 1 s)
instead of spinning on accept.

A server whose clients must first greet it (prove the cluster secret, name what they want) gives
a `greet`: it runs before a slot is taken, under one deadline for the whole greeting, with at
most `GreetLimits.limit` connections greeting at once and `per_peer` of one address, apart from
the slots (admission.py: at a cap the oldest greeting is dropped for the new one). So clients
that drip their first bytes hold no slot, and hold their place in the greeting for at most its
deadline; a refused greeting is logged at a bounded rate (ratelog.py). What `greet` returns is
handed to `serve`.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from khala.net.admission import GreetLimits, Pending
from khala.net.deadline import Deadline
from khala.net.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

ACCEPT_POLL_SECONDS = 0.5  # the loop sees stop() within this long
EMFILE_BACKOFF_FIRST, EMFILE_BACKOFF_MAX = 0.05, 1.0
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def close_quietly(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass


def _peer(conn: socket.socket) -> tuple[str, Any]:
    """(address, (address, port)) of a connection's peer."""
    try:
        where = conn.getpeername()
    except OSError:
        return "?", "?"
    return str(where[0]), where[:2]


#: What a server's greeting does with a new connection by its deadline; its result goes to serve.
Greet = Callable[[socket.socket, Deadline], Any]


class Acceptor:
    """Serves `listener` (bound and listening) from a daemon thread: `serve(conn, greeting)` per
    connection in a thread of its own, the connection closed after it; `refuse(conn)` at the
    cap (then closed). Without `greet` the greeting is None. `what` names a connection in the
    log ("a Thrift connection")."""

    def __init__(self, listener: socket.socket, limit: int,
                 serve: Callable[[socket.socket, Any], None],
                 refuse: Callable[[socket.socket], None] = close_quietly,
                 name: str = "khala-accept", greet: Greet | None = None,
                 greet_limits: GreetLimits | None = None, what: str = "a connection") -> None:
        if limit < 1:
            raise ValueError("a connection limit must be at least 1")
        self._listener = listener
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self._slots = threading.BoundedSemaphore(limit)
        self._serve, self._refuse = serve, refuse
        self._name, self._what = name, what
        self._greet = greet
        self._limits = greet_limits or GreetLimits()
        self._greeting: Pending[socket.socket] = Pending(self._limits.limit,
                                                          self._limits.per_peer)
        self._lock = threading.Lock()
        self._events = RateLimitedLog(log)
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
            if self._greet is None:
                self._hand_over(conn)
            else:
                self._admit(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        if not self._slots.acquire(blocking=False):
            self._busy(conn)
            return
        try:
            threading.Thread(target=self._run, args=(conn, None), daemon=True,
                             name=f"{self._name}-conn").start()
        except RuntimeError as exc:  # cannot start a thread: refuse this client
            log.warning("%s: cannot serve a connection: %s", self._name, exc)
            self._slots.release()
            self._busy(conn)

    def _admit(self, conn: socket.socket) -> None:
        """Into the greeting (no slot yet), making room by dropping the oldest greetings."""
        address, peer = _peer(conn)
        deadline = Deadline(self._limits.seconds)  # from the accept on
        with self._lock:
            dropped = self._greeting.admit(conn, address)
        for old in dropped:
            self._events.log(
                logging.WARNING, "dropped", "%s: dropped the oldest connection still greeting "
                "for a new one from %s (at most %d greeting at once, %d per address)",
                self._name, peer, self._limits.limit, self._limits.per_peer)
            try:
                old.shutdown(socket.SHUT_RDWR)  # its thread's read ends; that thread closes it
            except OSError:
                pass
        try:
            threading.Thread(target=self._greet_then_serve, args=(conn, peer, deadline),
                             daemon=True, name=f"{self._name}-greet").start()
        except RuntimeError as exc:
            log.warning("%s: cannot serve a connection: %s", self._name, exc)
            with self._lock:
                self._greeting.leave(conn)
            close_quietly(conn)

    def _greet_then_serve(self, conn: socket.socket, peer: Any, deadline: Deadline) -> None:
        assert self._greet is not None
        try:
            greeting = self._greet(conn, deadline)
        except Exception as exc:
            with self._lock:
                dropped = not self._greeting.leave(conn)  # then it was logged as dropped
            quiet = dropped or bool(getattr(exc, "quiet", False))
            self._events.log(logging.DEBUG if quiet else logging.WARNING, f"refused {exc}",
                             "refused %s from %s: %s", self._what, peer, exc)
            close_quietly(conn)
            return
        with self._lock:
            dropped = not self._greeting.leave(conn)
        if dropped:  # dropped just as it finished: its socket is shut down already
            close_quietly(conn)
            return
        if not self._slots.acquire(blocking=False):
            self._busy(conn)
            return
        self._run(conn, greeting)

    def _busy(self, conn: socket.socket) -> None:
        try:
            self._refuse(conn)
        except Exception:
            log.debug("%s: refusing a connection failed", self._name, exc_info=True)
        finally:
            close_quietly(conn)

    def _run(self, conn: socket.socket, greeting: Any) -> None:
        try:
            self._serve(conn, greeting)
        except Exception:
            log.exception("%s: a connection failed", self._name)
        finally:
            self._slots.release()  # first: a client that sees this one end finds a slot free
            close_quietly(conn)
