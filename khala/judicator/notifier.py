"""Wake-ups for report long-polls: new work, cancels, or an executor's own wake call; and the
executors that said they are draining (no work is assigned to them)."""

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
        self._draining: dict[str, float] = {}  # executor → when its mark lapses (monotonic)

    def generation(self) -> int:
        with self._cond:
            return self._generation

    def notify(self) -> None:
        """Something changed for everyone (work queued, a task cancelled)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wake(self, executor: str, draining_for: float = 0.0) -> None:
        """End `executor`'s current (or next) long-poll early. `draining_for` > 0: it is
        draining; `draining(executor)` says so for that many seconds (or until `forget`)."""
        with self._cond:
            self._woken.add(executor)
            if draining_for > 0:
                now = time.monotonic()
                self._draining = {e: t for e, t in self._draining.items() if t > now}
                self._draining[executor] = now + draining_for
            self._cond.notify_all()

    def draining(self, executor: str) -> bool:
        """Whether `executor` said it is draining (and the mark has not lapsed)."""
        with self._cond:
            return self._draining.get(executor, 0.0) > time.monotonic()

    def forget(self, executor: str) -> None:
        """`executor` left: drop its wake and draining mark."""
        with self._cond:
            self._woken.discard(executor)
            self._draining.pop(executor, None)

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


class DoneWatch:
    """Waiters for tasks to finish (API v2 `?wait=`). A waiter watches one task id and is set
    when that task is recorded done here or, through etcd, on another judicator; `everyone()`
    sets them all (an announcement too large to list, or a watch that was down)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}

    def watch(self, task_id: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(task_id, set()).add(event)
        return event

    def unwatch(self, task_id: str, event: threading.Event) -> None:
        with self._lock:
            events = self._waiters.get(task_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[task_id]

    def watching(self) -> int:
        with self._lock:
            return len(self._waiters)

    def finished(self, task_ids: list[str] | None) -> None:
        """These tasks are done (None: any may be)."""
        with self._lock:
            if task_ids is None:
                events = [e for group in self._waiters.values() for e in group]
            else:
                events = [e for i in task_ids for e in self._waiters.get(i, ())]
        for event in events:
            event.set()

    def everyone(self) -> None:
        self.finished(None)
