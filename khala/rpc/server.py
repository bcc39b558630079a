"""Serving the Judicator Thrift service: binary protocol over plain sockets, one thread per
client connection, at most `max_connections` at once (khala/net/acceptor.py: beyond them a new
connection is closed at once, and the client fails over or tries again). With node
authentication, a connection proves the cluster secret before it takes one of those slots,
within the `handshake` limits (one deadline for the whole handshake; a cap of its own on
connections in the handshake, in all and per address).

Each call is first read whole within `MessageLimits` (khala/rpc/guard.py: message size, items,
depth) and only then decoded by thriftpy2 from memory and answered through a `JudicatorHandler`.
When a connection ends its thread calls `on_disconnect` (the store releases what that thread
held).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from thriftpy2.protocol import TCyBinaryProtocol
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TCyBufferedTransport, TCyMemoryBuffer, TServerSocket, TSocket
from thriftpy2.transport.base import TTransportException

from khala.net.acceptor import ACCEPT_POLL_SECONDS, Acceptor, close_quietly
from khala.net.admission import GreetLimits
from khala.net.deadline import Deadline
from khala.rpc import judicator_thrift
from khala.rpc.auth import ACCEPTED, BUSY, NodeAuth
from khala.rpc.guard import ConnectionEnded, MessageLimits, MessageReader, MessageRefused
from khala.rpc.handler import JudicatorHandler

log = logging.getLogger(__name__)

CLIENT_IDLE_SECONDS = 600.0  # idle client connections are closed after this long


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
        handshake: GreetLimits | None = None,
    ) -> None:
        self._auth = auth  # node authentication: every connection proves the cluster secret
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._socket = TServerSocket(host=host, port=port)
        self._socket.listen()
        listener = self._socket.sock
        if listener is None:
            raise OSError(f"could not listen on {host}:{port}")
        self.port: int = listener.getsockname()[1]
        self.limits = limits
        self._max_task_size = max_task_size
        self._processor: Any = None
        self._on_disconnect: Callable[[], None] = lambda: None
        self._stopped = threading.Event()
        self._acceptor = Acceptor(
            listener, max_connections, self._connection,
            refuse=close_quietly if auth is None else self._busy, name="khala-thrift",
            greet=None if auth is None else self._handshake, greet_limits=handshake,
            what="a Thrift connection")

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
        self._acceptor.start()

    def stop(self) -> None:
        """Take no more connections (the accept loop ends within ACCEPT_POLL_SECONDS)."""
        self._stopped.set()
        self._acceptor.stop(wait=0)

    def close(self) -> None:
        """Close the listening socket."""
        self._stopped.set()
        self._acceptor.stop(ACCEPT_POLL_SECONDS * 4)
        self._socket.close()

    # ------------------------------------------------------------------ one connection

    def _handshake(self, client: socket.socket, deadline: Deadline) -> str:
        """The node-authentication handshake (khala/rpc/auth.py) up to its answer: the
        acceptor logs a refusal, and answers once it has a slot for the connection."""
        assert self._auth is not None
        return self._auth.verify(client, deadline)

    @staticmethod
    def _busy(client: socket.socket) -> None:
        """A node proved the secret but every slot is taken: it fails over or retries."""
        client.settimeout(1.0)
        client.sendall(BUSY)

    def _connection(self, client: socket.socket, node: str | None) -> None:
        try:
            client.settimeout(CLIENT_IDLE_SECONDS)
            if self._auth is not None:
                client.sendall(ACCEPTED)  # the handshake is done and this connection has a slot
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
