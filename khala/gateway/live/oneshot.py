"""One-request access to a running task on its executor, for HTTP routes that do not follow a
task (Procstar's outputs, pow-1's REST half): the output so far, and input sent or closed in
one request. Each opens one stream connection (khala/streams/wire.py) to the executor that
holds the task, found in etcd like a follower's (khala/streams/registry.py).

Input is sent under a sender name of its own per request: the executor counts what it queued
of that sender, so a request that loses its connection resends exactly the rest on the next
one. Two requests sending input to one task at the same moment take the input from each other
(the newer claim holds it) and may repeat bytes: send one at a time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from khala.model import Status, Task
from khala.rpc.auth import AuthError
from khala.streams.client import StreamConnection
from khala.streams.log import STREAMS, new_position
from khala.streams.registry import EndpointLookup

TRIES = 3  # connections one request may open (a lost one is followed by the next)
SNAPSHOT_SECONDS = 5.0  # bound of a snapshot read (an executor that never says `now`)
ANSWER_SECONDS = 10.0  # bound of the wait for the executor's ack of input or of its close
PAST_EVERYTHING = 1 << 62  # a position no output reaches: an input connection reads none


class Unreachable(Exception):
    """The task's executor cannot be reached for it now (no endpoint, no such task there, busy,
    or the connection keeps failing)."""


class NoInput(Exception):
    """The task does not take input (not submitted interactive, or its input is closed)."""


@dataclass
class Snapshot:
    """A running task's output as its executor holds it now: per stream (compile.stdout, …)
    the offset of its first kept byte and the bytes from there (the executor keeps the last
    `stream_buffer` bytes), in the order they were written across streams (`order`)."""

    streams: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    order: list[tuple[str, bytes]] = field(default_factory=list)


def _address(lookup: EndpointLookup, task: Task) -> str:
    if not task.executor or task.status not in (Status.COMPILING, Status.RUNNING):
        raise Unreachable("the task is not running")
    address = lookup.find(task.executor)
    if address is None:
        raise Unreachable(f"executor {task.executor!r} has no stream endpoint")
    return address


def snapshot(lookup: EndpointLookup, task: Task) -> Snapshot:
    """What the executor holding `task` has of its output now. Unreachable when it cannot
    tell."""
    address = _address(lookup, task)
    try:
        conn = StreamConnection(address, task.id, new_position(), False, auth=lookup.auth,
                                once=True)
    except (OSError, AuthError) as exc:
        raise Unreachable(f"executor {task.executor!r}: {exc}") from exc
    found: dict[str, tuple[int, bytearray]] = {}
    got = Snapshot()
    deadline = time.monotonic() + SNAPSHOT_SECONDS
    try:
        for header, data in conn.frames():
            kind = header.get("type")
            if kind == "chunk" and header.get("stream") in STREAMS:
                name = str(header["stream"])
                start, held = found.setdefault(name, (int(header["offset"]), bytearray()))
                held += data
                got.order.append((name, data))
            elif kind in ("unknown", "busy"):
                raise Unreachable(f"executor {task.executor!r} answered {kind}")
            if kind in ("now", "end") or time.monotonic() > deadline:
                break
    finally:
        conn.close()
    got.streams = {name: (start, bytes(held)) for name, (start, held) in found.items()}
    return got


@contextmanager
def _claimed(lookup: EndpointLookup, address: str, task: Task,
             sender: str) -> Iterator[tuple[StreamConnection, Iterator[Any], int]]:
    """A connection holding the task's input for `sender`: (it, its frames, bytes of the
    sender's input the executor queued so far)."""
    position = dict.fromkeys(STREAMS, PAST_EVERYTHING)
    try:
        conn = StreamConnection(address, task.id, position, True, sender, auth=lookup.auth)
    except (OSError, AuthError) as exc:
        raise Unreachable(f"executor {task.executor!r}: {exc}") from exc
    try:
        frames = conn.frames()
        for header, _ in frames:
            kind = header.get("type")
            if kind == "input":
                yield conn, frames, int(header["accepted"])
                return
            if kind == "no_input":
                raise NoInput("the task does not take input (not submitted interactive)")
            if kind in ("unknown", "busy", "end"):
                raise Unreachable(f"executor {task.executor!r} answered {kind}")
        raise Unreachable("the connection to the executor was lost")
    finally:
        conn.close()


def _until(frames: Iterator[Any], done: Any) -> str:
    """Read frames until `done(header)` ("done"), the input is closed ("closed"), or the
    connection ends or is superseded ("lost"), within ANSWER_SECONDS ("lost")."""
    deadline = time.monotonic() + ANSWER_SECONDS
    for header, _ in frames:
        kind = header.get("type")
        if done(header):
            return "done"
        if kind == "closed":
            return "closed"
        if kind in ("superseded", "end", "unknown") or time.monotonic() > deadline:
            return "lost"
    return "lost"


def send_input(lookup: EndpointLookup, task: Task, data: bytes) -> None:
    """Queue `data` for the running task's stdin, once. Unreachable or NoInput when not."""
    address, sender = _address(lookup, task), uuid.uuid4().hex
    for _ in range(TRIES):
        try:
            with _claimed(lookup, address, task, sender) as (conn, frames, accepted):
                if accepted < len(data):
                    conn.send_input(accepted, data[accepted:])
                ended = "done" if accepted >= len(data) else _until(
                    frames, lambda h: h.get("type") == "ack" and int(h["accepted"]) >= len(data))
                if ended == "closed":
                    raise NoInput("the task's input is closed")
                if ended == "done":
                    return
        except OSError:
            continue
    raise Unreachable("the input could not be queued; try again")


def close_input(lookup: EndpointLookup, task: Task) -> None:
    """Close the running task's stdin (the program reads EOF after what is queued)."""
    address, sender = _address(lookup, task), uuid.uuid4().hex
    for _ in range(TRIES):
        try:
            with _claimed(lookup, address, task, sender) as (conn, frames, accepted):
                conn.close_input(accepted)
                if _until(frames, lambda h: False) == "closed":
                    return
        except OSError:
            continue
    raise Unreachable("the input could not be closed; try again")
