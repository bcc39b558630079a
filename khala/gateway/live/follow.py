"""Following one task for a client (the pow-1 websocket and the SSE route): its status changes,
its output as produced, its input for interactive tasks, and the final task.

The task is read from the judicators (any of them); while an executor holds it, its output comes
straight from that executor's stream endpoint (found in etcd, khala/streams/registry.py); what
the stream did not deliver by the end (an executor without a registered endpoint, a lost
connection) comes from the stored result, from the same offsets. Every loop is bounded by
`max_seconds`; waiting while the task is queued polls the judicator with a backoff.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from khala.errors import KhalaError, RemoteError, Unavailable
from khala.model import Status, Task
from khala.rpc.auth import AuthError
from khala.rpc.client import JudicatorClient
from khala.streams.client import StreamConnection
from khala.streams.log import READ_MAX, STREAMS, Chunk, Dropped, advance
from khala.streams.registry import EndpointLookup

POLL_MIN, POLL_MAX = 0.02, 0.5  # seconds between reads of a task no executor streams
END_WAIT = 10.0  # seconds to wait for the judicators to record a task its executor ended
INPUT_BUFFER = 1024 * 1024  # input bytes held until the task's executor has queued them


@dataclass
class StatusChange:
    status: int


@dataclass
class Tick:
    """Nothing new; lets the caller notice a client that went away."""


@dataclass
class Final:
    task: Task


Event = StatusChange | Chunk | Dropped | Tick | Final


class TaskGone(Exception):
    """The task cannot be read: no such task, or a judicator refused or failed to read it
    (`error`, the client's; no judicator answering at all stays Unavailable)."""

    def __init__(self, error: KhalaError) -> None:
        super().__init__(f"task not readable: {error}")
        self.error = error


def stored_output(task: Task, stream: str) -> bytes:
    r = task.result
    if r is None:
        return b""
    text = {"compile.stdout": r.compile_output, "compile.stderr": r.compile_error,
            "execute.stdout": r.execute_output, "execute.stderr": r.execute_error}[stream]
    return text.encode() if isinstance(text, str) else bytes(text)


class Follower:
    """One client's follow of one task (`events()` in one thread; `send_input`,
    `close_input` and `stop` from another)."""

    def __init__(self, client: JudicatorClient, lookup: EndpointLookup, ref: str,
                 position: dict[str, int], want_input: bool, max_seconds: float,
                 status: int | None = None) -> None:
        self.client, self.lookup, self.ref = client, lookup, ref
        self.position = dict(position)
        # the last status the client was sent (a resumed stream knows it): each status
        # event is a change, never a repeat
        self.status = status
        self.want_input = want_input
        self.max_seconds = max_seconds
        self.stopped = threading.Event()
        self._cond = threading.Condition()
        self._order = threading.Lock()  # input frames leave in offset order
        self._conn: StreamConnection | None = None  # the connection holding the task's input
        self._sender = uuid.uuid4().hex  # names this follower's input on every connection
        self._held = bytearray()  # input from offset _acked on, not yet queued by the executor
        self._acked = 0
        self._input_closed = False
        self._input_lost = False  # another sender took the input over, or a new run lost it

    def first(self) -> Task:
        return self._find(self.ref)

    def _find(self, ref: str, wait: float = 0.0) -> Task:
        try:
            return self.client.find(ref, wait)
        except RemoteError as exc:
            raise TaskGone(exc) from exc
        except Unavailable:
            raise
        except KhalaError as exc:
            raise TaskGone(exc) from exc

    # ------------------------------------------------------------------ input

    def send_input(self, data: bytes) -> bool:
        """Forward input. It is held until the task's executor says it queued it (and sent
        again on the next connection when one is lost); blocks while INPUT_BUFFER bytes are
        held. False when it cannot go anywhere any more."""
        with self._cond:
            self._cond.wait_for(lambda: self._refused() or len(self._held) < INPUT_BUFFER,
                                self.max_seconds)
            if len(self._held) >= INPUT_BUFFER:
                return False
        with self._order:
            with self._cond:
                if self._refused():
                    return False
                offset = self._acked + len(self._held)
                self._held += data
                conn = self._conn
            if conn is not None:
                try:
                    conn.send_input(offset, data)  # blocks while the executor's queue is full
                except OSError:
                    conn.close()  # held: the relay reconnects and the next connection sends it
        return True

    def close_input(self) -> None:
        with self._order:
            with self._cond:
                if self._input_closed:
                    return
                self._input_closed = True
                end, conn = self._acked + len(self._held), self._conn
            if conn is not None:
                try:
                    conn.close_input(end)
                except OSError:
                    conn.close()  # the relay reconnects; the next connection sends it

    def stop(self) -> None:
        self.stopped.set()
        with self._cond:
            self._cond.notify_all()
            conn = self._conn
        if conn is not None:
            conn.close()

    def _refused(self) -> bool:
        return self._input_closed or self._input_lost or self.stopped.is_set()

    def _acknowledged(self, accepted: int) -> bool:
        """The executor queued `accepted` bytes of this follower's input: stop holding them.
        False when it has fewer than were acknowledged before (a new run of the task, whose
        executor was lost: the bytes are no longer held, the input cannot be replayed)."""
        with self._cond:
            if accepted < self._acked:
                self._input_lost = True
            else:
                drop = min(accepted - self._acked, len(self._held))
                del self._held[:drop]
                self._acked += drop
            self._cond.notify_all()
            return not self._input_lost

    def _attach(self, conn: StreamConnection, accepted: int) -> None:
        """`conn` holds the task's input now; its executor has `accepted` bytes of it: send
        the held rest (and the close), then let `send_input` use `conn`."""
        with self._order:
            if not self._acknowledged(accepted):
                return
            with self._cond:
                data, offset, closed = bytes(self._held), self._acked, self._input_closed
                self._conn = conn
            try:
                if data:
                    conn.send_input(offset, data)
                if closed:
                    conn.close_input(offset + len(data))
            except OSError:
                conn.close()  # the relay ends; the next connection sends it again

    def _superseded(self) -> None:
        with self._cond:
            self._input_lost, self._conn = True, None
            self._cond.notify_all()

    def _detach(self, conn: StreamConnection) -> None:
        with self._cond:
            if self._conn is conn:
                self._conn = None
        conn.close()

    # ------------------------------------------------------------------ output

    def events(self, task: Task) -> Iterator[Event]:
        """Events from `task` (as `first()` read it) to its end; stops early (no Final) when
        `stop()` is called or `max_seconds` pass."""
        deadline = time.monotonic() + self.max_seconds
        delay = POLL_MIN
        while not task.done:
            if self.stopped.is_set() or time.monotonic() > deadline:
                return
            if task.status != self.status:
                self.status = int(task.status)
                yield StatusChange(self.status)
            address = None
            if task.executor and task.status in (Status.COMPILING, Status.RUNNING):
                address = self.lookup.find(task.executor)
            outcome = None
            if address is not None:
                for event in self._relay(address, task.id):
                    if isinstance(event, str):
                        outcome = event
                    elif isinstance(event, StatusChange):
                        if event.status != self.status:  # the executor repeats what we sent
                            self.status = event.status
                            yield event
                    else:
                        yield event
            if outcome == "end":
                task = self._find(task.id, END_WAIT)
            else:
                yield Tick()
                self.stopped.wait(delay)
                delay = min(POLL_MAX, delay * 2)
                task = self._find(task.id)
        if task.status != self.status:
            self.status = int(task.status)
            yield StatusChange(self.status)
        for name in STREAMS:
            stored = stored_output(task, name)
            while self.position[name] < len(stored):  # in READ_MAX pieces, like live chunks
                at = self.position[name]
                chunk = Chunk(name, at, stored[at:at + READ_MAX])
                advance(self.position, chunk)
                yield chunk
        yield Final(task)

    def _relay(self, address: str, task_id: str) -> Iterator[Event | str]:
        """The events of one stream connection, then its outcome ("end", "unknown", "busy",
        "lost")."""
        want_input = self.want_input and not self._input_lost
        try:
            conn = StreamConnection(address, task_id, self.position, want_input, self._sender,
                                    auth=self.lookup.auth)
        except (OSError, AuthError):
            yield "lost"
            return
        outcome = "lost"
        try:
            for header, data in conn.frames():
                kind = header["type"]
                if kind == "input" and want_input:  # conn holds the input: send what is held
                    self._attach(conn, int(header["accepted"]))
                elif kind == "ack":
                    self._acknowledged(int(header["accepted"]))
                elif kind == "superseded":
                    self._superseded()
                elif kind == "chunk":
                    chunk = _chunk(header, data, self.position)
                    if chunk is not None:
                        advance(self.position, chunk)
                        yield chunk
                elif kind == "dropped":
                    item = Dropped(str(header["stream"]), int(header["start"]),
                                   int(header["end"]))
                    if item.stream in self.position and item.end > self.position[item.stream]:
                        advance(self.position, item)
                        yield item
                elif kind == "status":
                    yield StatusChange(int(header["status"]))
                elif kind == "tick":
                    yield Tick()
                elif kind in ("closed", "no_input"):
                    pass  # the input's end, seen by the sender's frames anyway
                else:
                    outcome = kind
        except (KeyError, ValueError, TypeError):
            outcome = "lost"
        finally:
            self._detach(conn)
        yield outcome


def _chunk(header: dict[str, object], data: bytes, position: dict[str, int]) -> Chunk | None:
    stream, offset = header.get("stream"), header.get("offset")
    if not isinstance(stream, str) or stream not in position or not isinstance(offset, int):
        return None
    skip = position[stream] - offset
    if skip >= len(data):
        return None
    return Chunk(stream, offset + max(0, skip), data[max(0, skip):])
