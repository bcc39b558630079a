"""A Judicator client that finds judicators through Discovery and fails over between them.

Connections are kept per thread and per address; a failed call closes its connection and is
tried on the next judicator, so callers see an answer or Unavailable, never a half-open socket.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from thriftpy2.protocol import TCyBinaryProtocolFactory
from thriftpy2.thrift import TApplicationException, TClient
from thriftpy2.transport import TCyBufferedTransportFactory, TSocket, TTransportException

from khala.config import parse_hostport
from khala.discovery.base import Discovery
from khala.errors import Unavailable
from khala.rpc import judicator_thrift

log = logging.getLogger(__name__)

TRANSPORT_ERRORS = (TTransportException, OSError, socket.timeout, EOFError)


class Connection:
    """One client connection to a judicator (binary protocol, buffered transport)."""

    def __init__(self, address: str, timeout: float) -> None:
        host, port = parse_hostport(address)
        self.timeout = timeout
        self._socket = TSocket(host, port, socket_timeout=int(timeout * 1000))
        transport = TCyBufferedTransportFactory().get_transport(self._socket)
        self._transport = transport
        transport.open()
        self.client: Any = TClient(
            judicator_thrift.Judicator, TCyBinaryProtocolFactory().get_protocol(transport)
        )

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        if timeout is None:
            return getattr(self.client, method)(*args)
        self._socket.set_timeout(int(timeout * 1000))
        try:
            return getattr(self.client, method)(*args)
        finally:
            self._socket.set_timeout(int(self.timeout * 1000))

    def close(self) -> None:
        self._transport.close()


def connect(address: str, timeout: float) -> Connection:
    return Connection(address, timeout)


class JudicatorClient:
    def __init__(self, discovery: Discovery, timeout: float = 30.0) -> None:
        self._discovery = discovery
        self._timeout = timeout
        self._local = threading.local()
        self._next = 0
        self._lock = threading.Lock()

    def _connections(self) -> dict[str, Any]:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def _order(self, prefer: str | None) -> list[str]:
        addresses = [e.address for e in self._discovery.judicators()]
        if not addresses:
            return []
        with self._lock:
            start = self._next % len(addresses)
            self._next += 1
        ordered = addresses[start:] + addresses[:start]
        if prefer in ordered:
            ordered.remove(prefer)
            ordered.insert(0, prefer)
        return ordered

    def call(
        self, method: str, *args: Any, timeout: float | None = None, prefer: str | None = None
    ) -> Any:
        """Call `method` on some judicator; returns (result). Raises Unavailable."""
        result, _ = self.call_at(method, *args, timeout=timeout, prefer=prefer)
        return result

    def call_at(
        self, method: str, *args: Any, timeout: float | None = None, prefer: str | None = None
    ) -> tuple[Any, str]:
        """Like call, also returning the address that answered."""
        errors = []
        conns = self._connections()
        for address in self._order(prefer):
            # A cached connection may have been closed by the server: one fresh retry.
            for fresh in (False, True) if address in conns else (True,):
                try:
                    if fresh:
                        self._drop(address)
                        conns[address] = connect(address, self._timeout)
                    return conns[address].call(method, *args, timeout=timeout), address
                except TRANSPORT_ERRORS + (TApplicationException,) as exc:
                    errors.append(f"{address}: {exc}")
                    self._drop(address)
        raise Unavailable("no judicator answered: " + ("; ".join(errors) or "none known"))

    def _drop(self, address: str) -> None:
        client = self._connections().pop(address, None)
        if client is not None:
            try:
                client.close()
            except OSError:
                pass

    def close(self) -> None:
        for address in list(self._connections()):
            self._drop(address)
