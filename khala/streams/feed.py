"""The standard input of an interactive step: a bounded queue written into the step's pipe."""

from __future__ import annotations

import os
import threading
from collections import deque


class StdinFeed:
    """Bytes for a step's stdin. `put` blocks while `capacity` bytes wait (backpressure to the
    sender); the sandbox core hands the pipe's write end to `start` and calls `stop` when the
    step ends. `close` ends the input (the program reads EOF once the queue is written)."""

    def __init__(self, initial: bytes, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._cond = threading.Condition()
        self._queue: deque[bytes] = deque([initial] if initial else [])
        self._size = len(initial)
        self._closed = False  # no more input will come
        self._stopped = False  # the step ended: drop everything
        self._thread: threading.Thread | None = None

    def put(self, data: bytes, timeout: float) -> bool:
        """Queue `data`; False when the input is closed or stays full for `timeout` seconds."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._closed or self._stopped or self._size < self.capacity, timeout)
            if not ok or self._closed or self._stopped:
                return False
            self._queue.append(data)
            self._size += len(data)
            self._cond.notify_all()
            return True

    def close(self) -> None:
        with self._cond:
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
