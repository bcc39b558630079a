"""The standard input of an interactive step: a bounded queue written into the step's pipe,
filled by one sender at a time at byte offsets of its input (docs/streaming.md, Input)."""

from __future__ import annotations

import os
import threading
from collections import deque


class Superseded(Exception):
    """A newer claim took the input over: this claim's sender may give no more input."""


class InputGap(Exception):
    """Input that starts past what the sender's claim has accepted (bytes were skipped)."""


class StdinFeed:
    """Bytes for a step's stdin. The sandbox core hands the pipe's write end to `start` and
    calls `stop` when the step ends; `close_at` ends the input (the program reads EOF once the
    queue is written).

    Input comes from one sender at a time, which `claim`s the feed and then `offer`s bytes at
    byte offsets of its own input. The feed counts what it accepted from the current sender, so
    a sender that reconnects (a new claim) resends from that count and nothing is lost or
    written twice. A newer claim supersedes the older at once (its `offer`s raise Superseded),
    also when the older one's connection is still open. `offer` blocks while `capacity` bytes
    wait (backpressure to the sender)."""

    def __init__(self, initial: bytes, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._cond = threading.Condition()
        self._queue: deque[bytes] = deque([initial] if initial else [])
        self._size = len(initial)
        self._closed = False  # no more input will come
        self._stopped = False  # the step ended: drop everything
        self._thread: threading.Thread | None = None
        self._generation = 0  # of the current claim
        self._sender: str | None = None
        self._accepted = 0  # bytes of the current sender's input queued (or written)

    def claim(self, sender: str) -> tuple[int, int]:
        """Make `sender` the feed's one sender; returns (generation, bytes of this sender's
        input already accepted: its next offer starts there). A claim by another sender
        starts that count again at 0."""
        with self._cond:
            self._generation += 1
            if sender != self._sender:
                self._sender, self._accepted = sender, 0
            self._cond.notify_all()  # an older claim's blocked offer ends (Superseded)
            return self._generation, self._accepted

    def progress(self, generation: int) -> int | None:
        """Bytes accepted under claim `generation`; None once a newer claim superseded it."""
        with self._cond:
            return self._accepted if generation == self._generation else None

    def offer(self, generation: int, offset: int | None, data: bytes, timeout: float
              ) -> int | None:
        """Queue the part of `data` (input bytes from `offset` on; None: right after what was
        accepted) that was not accepted before. Returns the bytes accepted from this sender so
        far, or None when the input is closed, the step ended, or the queue stayed full for
        `timeout` s. Raises Superseded (a newer claim) and InputGap (`offset` lies past the
        accepted bytes)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._closed or self._stopped or generation != self._generation
                or self._size < self.capacity, timeout)
            if generation != self._generation:
                raise Superseded()
            if not ok or self._closed or self._stopped:
                return None
            start = self._accepted if offset is None else offset
            if start > self._accepted:
                raise InputGap(f"input at offset {start}, {self._accepted} bytes accepted")
            tail = data[self._accepted - start:]
            if tail:
                self._queue.append(tail)
                self._size += len(tail)
                self._accepted += len(tail)
                self._cond.notify_all()
            return self._accepted

    def closed(self) -> bool:
        """Whether the input was closed (the program reads EOF after the queue)."""
        with self._cond:
            return self._closed

    def taking(self) -> bool:
        """Whether input is still taken (not closed, the step not ended)."""
        with self._cond:
            return not (self._closed or self._stopped)

    def close_at(self, generation: int, offset: int | None) -> None:
        """End the input once the sender's bytes up to `offset` (None: all so far) are in."""
        with self._cond:
            if generation != self._generation:
                raise Superseded()
            if offset is not None and offset > self._accepted:
                raise InputGap(f"close at offset {offset}, {self._accepted} bytes accepted")
            self._closed = True
            self._cond.notify_all()

    def start(self, fd: int) -> None:
        """Write the queue into `fd` (the step's stdin pipe) in a thread that owns `fd`."""
        self._thread = threading.Thread(target=self._write, args=(fd,), daemon=True,
                                        name="khala-stdin")
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._size = 0
            self._cond.notify_all()

    def _next(self) -> bytes | None:
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closed or self._stopped)
            if self._stopped or not self._queue:
                return None
            data = self._queue.popleft()
            self._size -= len(data)
            self._cond.notify_all()
            return data

    def _write(self, fd: int) -> None:
        try:
            while (data := self._next()) is not None:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]  # blocks while the program does not read
        except OSError:
            pass  # the step ended (EPIPE): the rest of the input has no reader
        finally:
            os.close(fd)
