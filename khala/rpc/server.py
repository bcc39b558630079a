"""Serving the Judicator Thrift service: binary protocol over plain sockets, one thread per
client connection, at most `max_connections` at once.

Each call is first read whole within `MessageLimits` (khala/rpc/guard.py: message size, items,
depth) and only then decoded by thriftpy2 from memory and answered through a `JudicatorHandler`.
When a connection ends its thread calls `on_disconnect` (the store releases what that thread
held). The accept loop backs off when the process is out of file descriptors instead of
spinning on EMFILE.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from thriftpy2.protocol import TCyBinaryProtocol
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TCyBufferedTransport, TCyMemoryBuffer, TServerSocket, TSocket
from thriftpy2.transport.base import TTransportException

from khala.rpc import judicator_thrift
from khala.rpc.auth import AuthError, NodeAuth
from khala.rpc.guard import ConnectionEnded, MessageLimits, MessageReader, MessageRefused
from khala.rpc.handler import JudicatorHandler

log = logging.getLogger(__name__)

CLIENT_IDLE_SECONDS = 600.0  # idle client connections are closed after this long
ACCEPT_POLL_SECONDS = 0.5  # the accept loop sees stop() within this long
# Out of descriptors (or kernel memory): wait before accepting again, doubling up to the max.
EMFILE_BACKOFF_FIRST, EMFILE_BACKOFF_MAX = 0.05, 1.0
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class RpcServer:
    """Binds `host:port` at once (port 0 = any free port, then read `.port`); `start(service)`
    serves it from a daemon thread; `stop()` then `close()` end it."""

    def __init__(
        self,
        host: str,
        port: int,
        limits: MessageLimits,
        max_task_size: int,
        max_connections: int = 256,
        auth: NodeAuth | None = None,
    ) -> None:
        self._auth = auth  # node authentication: every connection proves the cluster secret
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._socket = TServerSocket(host=host, port=port)
        self._socket.listen()
        listener = self._socket.sock
        if listener is None:
            raise OSError(f"could not listen on {host}:{port}")
        self._listener: socket.socket = listener
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self.limits = limits
        self._max_task_size = max_task_size
        self._slots = threading.BoundedSemaphore(max_connections)
        self._processor: Any = None
        self._on_disconnect: Callable[[], None] = lambda: None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="khala-thrift", daemon=True)

    def start(self, service: Any, on_disconnect: Callable[[], None] | None = None,
              wrap: Any = None) -> None:
        """Serve `service` (the judicator's domain API) through a `JudicatorHandler`; call
        `on_disconnect` in each connection's thread when the connection ends. `wrap`, when
        given, wraps the handler (e.g. khala.metrics' timing of every call)."""
        handler: Any = JudicatorHandler(service, self._max_task_size, self.limits.max_bytes)
        if wrap is not None:
            handler = wrap(handler)
        self._processor = TProcessor(judicator_thrift.Judicator, handler)
        if on_disconnect is not None:
            self._on_disconnect = on_disconnect
        self._thread.start()

    def stop(self) -> None:
        """Take no more connections (the accept loop ends within ACCEPT_POLL_SECONDS)."""
        self._stopped.set()

    def close(self) -> None:
        """Close the listening socket."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(ACCEPT_POLL_SECONDS * 4)
        self._socket.close()

    # ------------------------------------------------------------------ accept loop

    def _serve(self) -> None:
        backoff = EMFILE_BACKOFF_FIRST
        while not self._stopped.is_set():
            if not self._slots.acquire(timeout=ACCEPT_POLL_SECONDS):
                continue  # at the connection cap: new clients wait in the listen backlog
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                self._slots.release()
                continue
            except OSError as exc:
                self._slots.release()
                if self._stopped.is_set():
                    return
                if exc.errno in RESOURCE_ERRNOS:
                    if backoff == EMFILE_BACKOFF_FIRST:
                        log.warning("cannot accept connections: %s; backing off", exc)
                    self._stopped.wait(backoff)
                    backoff = min(backoff * 2, EMFILE_BACKOFF_MAX)
                else:
                    log.warning("accept failed: %s", exc)
                    self._stopped.wait(EMFILE_BACKOFF_FIRST)
                continue
            backoff = EMFILE_BACKOFF_FIRST
            try:
                threading.Thread(target=self._connection, args=(client,), daemon=True).start()
            except RuntimeError as exc:  # cannot start a thread: refuse this client
                log.warning("cannot serve a connection: %s", exc)
                client.close()
                self._slots.release()

    # ------------------------------------------------------------------ one connection

    @staticmethod
    def _authenticated(auth: NodeAuth, client: socket.socket) -> bool:
        """The node-authentication handshake (khala/rpc/auth.py); a refusal is logged."""
        try:
            peer: Any = client.getpeername()
        except OSError:
            peer = "?"
        try:
            auth.server_handshake(client)
            return True
        except AuthError as exc:
            log.log(logging.DEBUG if exc.quiet else logging.WARNING,
                    "refused a Thrift connection from %s: %s", peer, exc)
            return False

    def _connection(self, client: socket.socket) -> None:
        try:
            client.settimeout(CLIENT_IDLE_SECONDS)
            if self._auth is not None and not self._authenticated(self._auth, client):
                return
            reader = MessageReader(client.recv, self.limits)
            oprot = TCyBinaryProtocol(TCyBufferedTransport(TSocket(sock=client)))
            while not self._stopped.is_set():
                message = reader.read_message()
                iprot = TCyBinaryProtocol(TCyMemoryBuffer(message))
                self._processor.process(iprot, oprot)
        except MessageRefused as exc:
            log.warning("closing a connection that sent a refused message: %s", exc)
        except (ConnectionEnded, TTransportException, OSError):
            pass  # the client went away or stayed idle too long
        except Exception:
            log.exception("a Thrift connection failed")
        finally:
            try:
                client.close()
            finally:
                try:
                    self._on_disconnect()
                except Exception:
                    log.exception("releasing a connection's resources failed")
                self._slots.release()
