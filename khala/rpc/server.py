"""Serving the Judicator Thrift service: a threaded server (binary protocol, buffered transport)
around a `JudicatorHandler`, one thread per client connection."""

from __future__ import annotations

import logging
import threading
from typing import Any

from thriftpy2.protocol import TCyBinaryProtocolFactory
from thriftpy2.server import TThreadedServer
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TCyBufferedTransportFactory, TServerSocket

from khala.rpc import judicator_thrift
from khala.rpc.auth import AuthError, NodeAuth
from khala.rpc.handler import JudicatorHandler, Service

log = logging.getLogger(__name__)

# Idle client connections are closed by the server after this long (clients reconnect).
CLIENT_IDLE_MS = 600_000


class RpcServer:
    """Binds `host:port` at once (port 0 = any free port, then read `.port`); `start(service)`
    serves it from a daemon thread; `stop()` then `close()` end it."""

    def __init__(self, host: str, port: int, auth: NodeAuth | None = None) -> None:
        self._auth = auth  # node authentication: every connection proves the cluster secret
        self._socket = TServerSocket(host=host, port=port, client_timeout=CLIENT_IDLE_MS)
        self._socket.listen()
        sock: Any = self._socket.sock
        self.port: int = sock.getsockname()[1]
        self._server: Any = None
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="khala-thrift", daemon=True)

    def _serve(self) -> None:
        # TServerSocket.listen() was called in __init__ (to learn the port); serve() would call
        # it again, so run the accept loop here.
        server = self._server
        while not server.closed:
            try:
                client = self._socket.accept()
            except OSError:
                if server.closed:
                    return
                log.exception("accept failed")
                continue
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: Any) -> None:
        if self._auth is not None:
            try:
                peer = client.sock.getpeername()
            except OSError:
                peer = "?"
            try:
                self._auth.server_handshake(client.sock)
            except AuthError as exc:
                log.log(logging.DEBUG if exc.quiet else logging.WARNING,
                        "refused a Thrift connection from %s: %s", peer, exc)
                client.close()
                return
        self._server.handle(client)

    def start(self, service: Service, wrap: Any = None) -> None:
        """Serve `service` (the judicator's domain API) through a `JudicatorHandler`; `wrap`,
        when given, wraps the handler (e.g. khala.metrics' timing of every call)."""
        handler: Any = JudicatorHandler(service)
        if wrap is not None:
            handler = wrap(handler)
        self._server = TThreadedServer(
            TProcessor(judicator_thrift.Judicator, handler),
            self._socket,
            iprot_factory=TCyBinaryProtocolFactory(),
            itrans_factory=TCyBufferedTransportFactory(),
            daemon=True,
        )
        self._server.closed = self._closed
        self._thread.start()

    def stop(self) -> None:
        """Take no more connections (the accept loop ends once the socket is closed)."""
        self._closed = True
        if self._server is not None:
            self._server.closed = True

    def close(self) -> None:
        """Close the listening socket."""
        self._socket.close()
