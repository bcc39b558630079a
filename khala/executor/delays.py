"""Status changes reported only if they last: a step's new status asks for a report `delay`
seconds after it, and only if the step is still in it then (a step that ends sooner is reported
by its result alone). One thread, started at the first change, for all of them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")  # what changed (a slot)
V = TypeVar("V")  # its new value (a status)


class Delayed(Generic[K, V]):
    """`later(key, value)`: `due(key, value)` is called `delay` seconds later, in order."""

    def __init__(self, delay: float, due: Callable[[K, V], None]) -> None:
        self.delay = delay
        self._due = due
        self._lock = threading.Lock()
        self._queue: list[tuple[float, K, V]] = []
        self._changed = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def later(self, key: K, value: V) -> None:
        with self._lock:
            self._queue.append((time.monotonic() + self.delay, key, value))
            self._changed.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="khala-progress",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        """Lives as long as the executor (a daemon, idle while nothing is due)."""
        while True:
            with self._lock:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._changed.wait(wait)
                _, key, value = self._queue.pop(0)
            self._due(key, value)
