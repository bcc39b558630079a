"""The executor's outbox: finished tasks waiting to be handed in, keyed by task id.

A report always states every result it holds (a result recorded twice is dropped the second
time); a hand-in carries only results no other call carries now (`claim_results`), and they are
forgotten once a judicator took them (`handed_in`) or claimable again when the call failed
(`unclaim`). The outbox shares its slots' lock (khala/executor/slots.py), so that a report's
snapshot sees a task either running or finished, never neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from khala.model import Task


class Outbox:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._waiting: dict[str, Task] = {}
        self._sending: set[str] = set()  # ids a call in flight carries (claimed)

    # ------------------------------------------------------------------ with the lock held

    def put_locked(self, task: Task) -> None:
        """A task finished (the lock held): its result waits here, claimable."""
        self._sending.discard(task.id)
        self._waiting[task.id] = task

    def listed_locked(self, claim: bool) -> list[Task]:
        """Every result waiting (the lock held); `claim`: a report carries them now."""
        found = list(self._waiting.values())
        if claim:
            self._sending.update(t.id for t in found)
        return found

    def get_locked(self, task_id: str) -> Task | None:
        """The result waiting for `task_id`, if any (the lock held)."""
        return self._waiting.get(task_id)

    def __len__(self) -> int:
        return len(self._waiting)

    # ------------------------------------------------------------------ calls

    def claim_results(self, fits: Callable[[Task], bool] = lambda _t: True
                      ) -> tuple[list[Task], bool]:
        """The finished tasks no call carries yet that `fits` a hand-in, now claimed for it;
        and whether others (that do not fit) are left for a report."""
        with self._lock:
            free = [t for i, t in self._waiting.items() if i not in self._sending]
            found = [t for t in free if fits(t)]
            self._sending.update(t.id for t in found)
            return found, len(found) < len(free)

    def unclaim(self, sent: list[Task]) -> None:
        """A call carrying these results failed: they wait for the next report."""
        with self._lock:
            self._sending.difference_update(t.id for t in sent)

    def handed_in(self, sent: list[Task]) -> None:
        """A judicator took these results: forget them (unless replaced since)."""
        with self._lock:
            for task in sent:
                self._sending.discard(task.id)
                if self._waiting.get(task.id) is task:
                    del self._waiting[task.id]
