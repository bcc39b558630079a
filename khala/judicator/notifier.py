"""Wake-ups for report long-polls: new work, cancels, or an executor's own wake call."""

from __future__ import annotations

import threading
import time


class Notifier:
    """A generation counter under a condition. Waiters return when the generation moves, when
    their executor was woken, or at their deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._woken: set[str] = set()

    def generation(self) -> int:
        with self._cond:
            return self._generation

    def notify(self) -> None:
        """Something changed for everyone (work queued, a task cancelled)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wake(self, executor: str) -> None:
        """End `executor`'s current (or next) long-poll early."""
        with self._cond:
            self._woken.add(executor)
            self._cond.notify_all()

    def wait(self, executor: str, since: int, timeout: float) -> str:
        """Wait until `executor` is woken ("wake", which consumes the wake), the generation
        differs from `since` ("event"), or `timeout` seconds pass ("timeout")."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if executor in self._woken:
                    self._woken.discard(executor)
                    return "wake"
                if self._generation != since:
                    return "event"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                self._cond.wait(remaining)
