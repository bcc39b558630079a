"""The client's transport: connections to the judicators Discovery lists, and failover between
them. It moves wire structs; khala/rpc/client.py gives them their domain meaning.

- Order: made with a `key` (an executor's name), it calls the judicators in that key's
  rendezvous order (rendezvous.py, on the judicators' registered names), so executors spread
  over the live judicators, fail over each to its own next choice and move back when their
  judicator returns; without a key (a gateway) it goes round robin. A judicator that failed a
  call in the last FAILED_COOLDOWN seconds is tried last. `prefer` goes first.
- Failover: a call moves on to the next judicator only on a transport failure, never on a
  ReturnCode. No judicator answering → Unavailable.
- Connections are kept per thread and per address; a failed call closes its connection and is
  tried on the next judicator, so callers see an answer or Unavailable, never a half-open socket.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from thriftpy2.protocol import TCyBinaryProtocolFactory
from thriftpy2.thrift import TApplicationException, TClient
from thriftpy2.transport import TCyBufferedTransportFactory, TSocket, TTransportException

from khala.config import parse_hostport
from khala.discovery.base import Discovery
from khala.errors import Unavailable
from khala.model import Code
from khala.rpc import judicator_thrift
from khala.rpc.auth import AuthError, NodeAuth
from khala.rpc.rendezvous import rendezvous_order

log = logging.getLogger(__name__)

TRANSPORT_ERRORS = (TTransportException, OSError, socket.timeout, EOFError)
#: Seconds a judicator that failed a call is tried after the others.
FAILED_COOLDOWN = 3.0
#: A judicator that accepts no connection, or acknowledges no byte sent to it, for this long is
#: unreachable (a cut link, a dead host): the call fails over at once instead of waiting out its
#: whole timeout (a slow judicator still acknowledges what it is sent, at the TCP level).
UNREACHABLE_SECONDS = 3.0


def short_name(registered: str) -> str:
    """A judicator's name without the discovery prefix (/khala/judicators/judicator.1 →
    judicator.1): the same for every client whatever prefix they watch."""
    return registered.rstrip("/").rsplit("/", 1)[-1]


class Connection:
    """One client connection to a judicator (binary protocol, buffered transport)."""

    def __init__(
        self, address: str, timeout: float, auth: NodeAuth | None = None, name: str = ""
    ) -> None:
        host, port = parse_hostport(address)
        self.timeout = timeout
        reach = min(timeout, UNREACHABLE_SECONDS)
        self._socket = TSocket(host, port, socket_timeout=int(timeout * 1000),
                               connect_timeout=int(reach * 1000))
        transport = TCyBufferedTransportFactory().get_transport(self._socket)
        self._transport = transport
        transport.open()
        self._socket.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                                     int(reach * 1000))
        if auth is not None:  # prove the cluster secret before any Thrift byte
            try:
                auth.client_handshake(self._socket.sock, name)
            except AuthError:
                transport.close()
                raise
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


class Failover:
    """Calls on whichever judicator answers. `auth`: the cluster secret, proved on every new
    connection as node `name` (docs/security.md); None when node authentication is off."""

    def __init__(self, discovery: Discovery, timeout: float, key: str = "",
                 auth: NodeAuth | None = None, name: str = "") -> None:
        self.timeout = timeout
        self._discovery = discovery
        self._key = key  # rendezvous key (an executor's name); "" = round robin
        self._auth = auth
        self._name = name or key
        self._local = threading.local()
        self._next = 0
        self._lock = threading.Lock()
        self._failed: dict[str, float] = {}  # address → when it last failed (monotonic)

    def _connections(self) -> dict[str, Connection]:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns  # type: ignore[no-any-return]

    def order(self, prefer: str | None = None) -> list[str]:
        """The addresses to try, in order."""
        entries = self._discovery.judicators()
        if not entries:
            return []
        if self._key:
            ranked = rendezvous_order(self._key, entries, lambda e: short_name(e.name))
            ordered = [e.address for e in ranked]
        else:
            addresses = [e.address for e in entries]
            with self._lock:
                start = self._next % len(addresses)
                self._next += 1
            ordered = addresses[start:] + addresses[:start]
        now = time.monotonic()
        with self._lock:
            recent = {a for a, t in self._failed.items() if now - t < FAILED_COOLDOWN}
        ordered = [a for a in ordered if a not in recent] + [a for a in ordered if a in recent]
        if prefer in ordered:
            ordered.remove(prefer)
            ordered.insert(0, prefer)
        return ordered

    def call(self, method: str, *args: Any, timeout: float | None = None,
             prefer: str | None = None, only: bool = False) -> tuple[Any, str]:
        """Call `method` on some judicator (`only`: on `prefer` alone); returns (wire reply,
        address that answered). Raises Unavailable when none answered."""
        errors = []
        conns = self._connections()
        addresses = [prefer] if only and prefer else self.order(prefer)
        for address in addresses:
            # A cached connection may have been closed by the server: one fresh retry.
            for fresh in (False, True) if address in conns else (True,):
                try:
                    if fresh:
                        self._drop(address)
                        conns[address] = Connection(address, self.timeout, self._auth,
                                                    self._name)
                    reply = conns[address].call(method, *args, timeout=timeout)
                except TRANSPORT_ERRORS + (TApplicationException, AuthError) as exc:
                    errors.append(f"{address}: {exc}")
                    self._drop(address)
                    self._mark(address, failed=True)
                    continue
                self._mark(address, failed=False)
                return reply, address
        raise Unavailable("no judicator answered: " + ("; ".join(errors) or "none known"))

    def call_each(self, method: str, *args: Any, timeout: float | None = None) -> list[str]:
        """Call `method` on every known judicator (best effort); the addresses answering OK."""
        took = []
        for address in self.order():
            try:
                code, _ = self.call(method, *args, timeout=timeout, prefer=address, only=True)
            except Unavailable as exc:
                log.info("%s on %s failed: %s", method, address, exc)
                continue
            if code == Code.OK:
                took.append(address)
        return took

    def _mark(self, address: str, failed: bool) -> None:
        with self._lock:
            if failed:
                self._failed[address] = time.monotonic()
            else:
                self._failed.pop(address, None)

    def _drop(self, address: str) -> None:
        client = self._connections().pop(address, None)
        if client is not None:
            try:
                client.close()
            except OSError:
                pass

    def close(self) -> None:
        """Close this thread's connections."""
        for address in list(self._connections()):
            self._drop(address)
