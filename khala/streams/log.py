"""A task's live output as a bounded log addressed by per-stream byte offsets. No IO.

The executor appends what the sandbox captures (`TaskLog.append`, never blocking the task);
readers (stream connections from gateways) ask for everything after a `Position` — one byte
offset per stream — and get the chunks past it in the order they were produced. The log keeps
at most `capacity` bytes: the oldest chunks go first, and a reader whose position falls before
what is kept gets a `Dropped` marker for the gap instead of the bytes. So a slow reader never
holds the task back and never makes the log grow; it loses the middle of a flood, explicitly.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

#: The streams of a task, in the order of a Position: what `event_id` writes.
STREAMS = ("compile.stdout", "compile.stderr", "execute.stdout", "execute.stderr")
#: Largest batch of bytes one `read` returns (bounds a reader's memory per turn).
READ_MAX = 64 * 1024


@dataclass
class Chunk:
    stream: str
    offset: int  # byte offset of data[0] within its stream
    data: bytes


@dataclass
class Dropped:
    """Bytes [start, end) of `stream` were produced but are no longer kept for this reader."""

    stream: str
    start: int
    end: int


@dataclass
class Batch:
    items: list[Chunk | Dropped] = field(default_factory=list)
    status: int = 0  # the task's status as the executor last set it
    ended: bool = False  # the task ended and every item up to its end was returned


def new_position() -> dict[str, int]:
    return {name: 0 for name in STREAMS}


def event_id(position: dict[str, int]) -> str:
    """A position as an SSE event id: the four offsets joined by dots."""
    return ".".join(str(position.get(name, 0)) for name in STREAMS)


def parse_event_id(text: str) -> dict[str, int] | None:
    """The position an event id names, or None when `text` is not one."""
    parts = text.strip().split(".")
    if len(parts) != len(STREAMS) or not all(p.isdigit() and len(p) <= 18 for p in parts):
        return None
    return dict(zip(STREAMS, (int(p) for p in parts), strict=True))


def utf8_split(data: bytes) -> tuple[bytes, bytes]:
    """Split off an incomplete UTF-8 sequence at the end of `data` (at most 3 bytes), so that
    chunks end on character boundaries; invalid bytes are left where they are."""
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data, b""
        if byte >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return (data, b"") if back >= need else (data[:-back], data[-back:])
    return data, b""


class TaskLog:
    """The bounded, offset-addressed output log of one task (thread-safe)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._cond = threading.Condition()
        self._chunks: deque[Chunk] = deque()
        self._size = 0
        self._end = new_position()  # next offset of each stream
        self._first = new_position()  # first offset still kept of each stream
        self._carry: dict[str, bytes] = {}
        self._status = 0
        self._ended = False
        self._wakes = 0

    def append(self, stream: str, data: bytes) -> None:
        """Add output of `stream` (never blocks on readers)."""
        with self._cond:
            data, self._carry[stream] = utf8_split(self._carry.get(stream, b"") + data)
            self._add(stream, data)

    def _add(self, stream: str, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(Chunk(stream, self._end[stream], data))
        self._end[stream] += len(data)
        self._size += len(data)
        while self._size > self.capacity and self._chunks:
            old = self._chunks.popleft()
            self._size -= len(old.data)
            self._first[old.stream] = old.offset + len(old.data)
        self._cond.notify_all()

    def set_status(self, status: int) -> None:
        with self._cond:
            self._status = status
            self._cond.notify_all()

    def end(self, status: int) -> None:
        """The task ended with `status`: flush what was held back, wake every reader."""
        with self._cond:
            for stream, rest in list(self._carry.items()):
                self._carry[stream] = b""
                self._add(stream, rest)
            self._status, self._ended = status, True
            self._cond.notify_all()

    def wake(self) -> None:
        """Make waiting readers return now (their connection has something else to send)."""
        with self._cond:
            self._wakes += 1
            self._cond.notify_all()

    def wakes(self) -> int:
        """How many `wake`s came so far (for `read`'s `since`)."""
        with self._cond:
            return self._wakes

    def ends(self) -> dict[str, int]:
        with self._cond:
            return dict(self._end)

    def read(self, position: dict[str, int], status: int, timeout: float,
             since: int | None = None) -> Batch:
        """What lies past `position` (at most READ_MAX bytes); waits up to `timeout` seconds
        while there is nothing new, the status is still `status` and no `wake` came (since the
        `wakes()` count `since`, else since the call). Advance the position by the returned
        items (`advance`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            wakes = self._wakes if since is None else since
            while True:
                batch = self._collect(position)
                if batch.items or batch.ended or self._status != status or self._wakes != wakes:
                    return batch
                left = deadline - time.monotonic()
                if left <= 0:
                    return batch
                self._cond.wait(left)

    def _collect(self, position: dict[str, int]) -> Batch:
        batch = Batch(status=self._status)
        seen = dict(position)
        for name in STREAMS:
            at = seen.get(name, 0)
            if at < self._first[name]:
                batch.items.append(Dropped(name, at, self._first[name]))
                seen[name] = self._first[name]
        size = 0
        for chunk in self._chunks:
            stop = chunk.offset + len(chunk.data)
            at = seen[chunk.stream]
            if stop <= at:
                continue
            if size >= READ_MAX:
                return batch
            data = chunk.data[max(0, at - chunk.offset):]
            batch.items.append(Chunk(chunk.stream, max(at, chunk.offset), data))
            seen[chunk.stream] = stop
            size += len(data)
        batch.ended = self._ended
        return batch


def advance(position: dict[str, int], item: Chunk | Dropped) -> None:
    """Move `position` past `item`."""
    if isinstance(item, Chunk):
        position[item.stream] = max(position[item.stream], item.offset + len(item.data))
    else:
        position[item.stream] = max(position[item.stream], item.end)
