"""A typed Judicator client that finds judicators through Discovery and fails over between them.

Callers speak domain types (khala.model) only; the Thrift structs stay in this package.

- Each typed method returns the domain value on OK and raises on any other ReturnCode:
  INVALID_INPUT → InvalidInput, TOO_LARGE → TooLarge, NOT_EXIST → NotFound, ERROR (or an answer
  that cannot be decoded) → RemoteError, which is an Unavailable naming the judicator that
  answered. No judicator answering at all → Unavailable.
- Order: a client made with a `key` (an executor's name) calls the judicators in its
  rendezvous order (rendezvous.py, on the judicators' registered names), so executors spread
  over the live judicators, fail over each to its own next choice and move back when their
  judicator returns; a client without a key (a gateway) goes round robin. A judicator that
  failed a call in the last FAILED_COOLDOWN seconds is tried last. `prefer` goes first.
- Failover: a call moves on to the next judicator only on a transport failure, never on a
  ReturnCode. `report` returns the address that answered in `Assignment.judicator`.
- Connections are kept per thread and per address; a failed call closes its connection and is
  tried on the next judicator, so callers see an answer or Unavailable, never a half-open socket.

A new method: one typed method here that converts its arguments (convert.py), calls
`self._call(name, ...)`, checks the code with `_ok` and converts the reply.
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
from khala.errors import InvalidInput, RemoteError, Unavailable
from khala.model import (
    Assignment,
    Code,
    ExecutorInfo,
    Language,
    SearchQuery,
    Task,
    TaskBrief,
)
from khala.rpc import convert, judicator_thrift
from khala.rpc.auth import AuthError, NodeAuth
from khala.rpc.jobs_client import JobCalls
from khala.rpc.ops import OpsCalls, stats_to_thrift
from khala.rpc.rendezvous import rendezvous_order
from khala.rpc.tasks_client import TaskCalls

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


def connect(
    address: str, timeout: float, auth: NodeAuth | None = None, name: str = ""
) -> Connection:
    return Connection(address, timeout, auth, name)


class JudicatorClient(TaskCalls, JobCalls, OpsCalls):
    """`auth`: the cluster secret, proved on every new connection as node `name` (docs/
    security.md); None when node authentication is off."""

    def __init__(
        self,
        discovery: Discovery,
        timeout: float = 30.0,
        key: str = "",
        auth: NodeAuth | None = None,
        name: str = "",
    ) -> None:
        self._discovery = discovery
        self._timeout = timeout
        self._key = key  # rendezvous key (an executor's name); "" = round robin
        self._auth = auth
        self._name = name or key
        self._local = threading.local()
        self._next = 0
        self._lock = threading.Lock()
        self._failed: dict[str, float] = {}  # address → when it last failed (monotonic)

    def _connections(self) -> dict[str, Any]:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def _order(self, prefer: str | None = None) -> list[str]:
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

    # ------------------------------------------------------------------ typed methods

    def ping(self) -> None:
        code, address = self._call("ping")
        _ok(code, "ping", address)

    def add(self, task: Task) -> str:
        """Submit a new task; returns the id the judicator gave it ("" if it sent none)."""
        reply, address = self._call("add", convert.task_to_thrift(task))
        _ok(reply.result, "add", address)
        return reply.id or ""

    def cancel(self, id: str) -> None:  # noqa: A002 - wire name
        code, address = self._call("cancel", id)
        _ok(code, "cancel", address)

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        """(pages, the page's task briefs)."""
        reply, address = self._call("search", *convert.search_to_wire(query))
        _ok(reply.result, "search", address)
        return reply.pages or 0, [convert.brief_from_thrift(b) for b in reply.tasks or []]

    def get(self, id: str) -> Task:  # noqa: A002
        reply, address = self._call("get", id)
        _ok(reply.result, "get", address)
        if reply.task is None:
            raise RemoteError(f"get: judicator at {address} sent no task", address)
        try:
            return convert.task_from_thrift(reply.task)
        except InvalidInput as exc:
            log.warning("judicator sent an undecodable task %s: %s", id, exc)
            raise RemoteError(f"get: undecodable task from {address}: {exc}", address) from exc

    def executors(self) -> list[ExecutorInfo]:
        reply, address = self._call("executors")
        _ok(reply.result, "executors", address)
        return [convert.executor_from_thrift(e) for e in reply.executors or []]

    def report(
        self,
        executor: str,
        complete: list[Task],
        executing: list[TaskBrief],
        vacant: int,
        wait_ms: int = 0,
        languages: list[Language] | None = None,
        *,
        timeout: float | None = None,
        prefer: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> Assignment:
        """An executor's heartbeat (docs/rpc.md). `complete` sends id, done, status, executor
        and result of each task; `executing` id, status and executor. The answer names the
        judicator that gave it (`judicator`); tasks that could not be decoded come back in
        `undecodable` rather than being lost. `languages`: the presets this executor has."""
        reply, address = self._call(
            "report",
            executor,
            [convert.completed_to_thrift(t) for t in complete],
            [convert.executing_to_thrift(b) for b in executing],
            vacant,
            wait_ms,
            stats_to_thrift(stats),
            [convert.language_to_thrift(lang) for lang in languages or []],
            timeout=timeout,
            prefer=prefer,
        )
        _ok(reply.result, "report", address)
        return convert.assignment_from_thrift(reply, address)

    def languages(self) -> list[Language]:
        """The language presets live executors have (judging), with versions and counts."""
        reply, address = self._call("languages")
        _ok(reply.result, "languages", address)
        return [convert.language_from_thrift(lang) for lang in reply.languages or []]

    def wake(
        self, executor: str, *, timeout: float | None = None, prefer: str | None = None
    ) -> None:
        """End `executor`'s pending long-poll early (on `prefer`, where it is held)."""
        code, address = self._call("wake", executor, False, timeout=timeout, prefer=prefer)
        _ok(code, "wake", address)

    def hand_in(self, executor: str, complete: list[Task], *,
                timeout: float | None = None) -> None:
        """Hand finished tasks in without a report (docs/rpc.md): each is recorded if
        `executor` still holds it, else dropped as late; either way it is handed in. Raises
        Unavailable when no judicator took them (an old judicator does not know the call)."""
        code, address = self._call(
            "hand_in", executor, [convert.completed_to_thrift(t) for t in complete],
            timeout=timeout)
        _ok(code, "hand_in", address)

    def drain(self, executor: str, *, timeout: float | None = None) -> list[str]:
        """Tell every judicator that `executor` is draining: each ends its long-poll and
        assigns it nothing more. Returns the addresses that took it (judicators too old to
        know the flag just wake it)."""
        return self._call_each("wake", executor, True, timeout=timeout)

    def leave(self, executor: str, *, timeout: float | None = None) -> list[str]:
        """`executor` stops: every judicator forgets it (and its draining mark); what it still
        holds goes back to the queue. Returns the addresses that took it."""
        return self._call_each("leave", executor, timeout=timeout)

    # ------------------------------------------------------------------ transport

    def _call(
        self,
        method: str,
        *args: Any,
        timeout: float | None = None,
        prefer: str | None = None,
        only: bool = False,
    ) -> tuple[Any, str]:
        """Call `method` on some judicator (`only`: on `prefer` alone); returns (wire reply,
        address that answered). Raises Unavailable when none answered."""
        errors = []
        conns = self._connections()
        addresses = [prefer] if only and prefer else self._order(prefer)
        for address in addresses:
            # A cached connection may have been closed by the server: one fresh retry.
            for fresh in (False, True) if address in conns else (True,):
                try:
                    if fresh:
                        self._drop(address)
                        conns[address] = connect(address, self._timeout, self._auth, self._name)
                    reply = conns[address].call(method, *args, timeout=timeout)
                except TRANSPORT_ERRORS + (TApplicationException, AuthError) as exc:
                    errors.append(f"{address}: {exc}")
                    self._drop(address)
                    self._mark(address, failed=True)
                    continue
                self._mark(address, failed=False)
                return reply, address
        raise Unavailable("no judicator answered: " + ("; ".join(errors) or "none known"))

    def _call_each(self, method: str, *args: Any, timeout: float | None = None) -> list[str]:
        """Call `method` on every known judicator (best effort); the addresses answering OK."""
        took = []
        for address in self._order():
            try:
                code, _ = self._call(method, *args, timeout=timeout, prefer=address, only=True)
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
        for address in list(self._connections()):
            self._drop(address)


def _ok(code: int, what: str, address: str) -> None:
    """Return on OK; raise the domain error of any other ReturnCode."""
    if code != Code.OK:
        raise convert.error_of(code, what, address)
