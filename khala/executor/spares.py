"""Spare slot threads: a slot thread whose task ended waits up to SPARE_SECONDS for the next
task, which is then handed to it instead of starting a thread (a start then waits for no new
thread)."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

#: How long an idle slot thread waits for the next task before it ends.
SPARE_SECONDS = 30.0

W = TypeVar("W")  # what a spare is handed: the slot it runs next


class Spares(Generic[W]):
    """Idle threads waiting for work, newest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Spare[W]] = []

    def hand(self, work: W) -> threading.Thread | None:
        """Give `work` to an idle thread: that thread, or None when none is idle."""
        with self._lock:
            spare = self._idle.pop() if self._idle else None
        if spare is None:
            return None
        spare.give(work)
        return spare.thread

    def wait(self, timeout: float = SPARE_SECONDS) -> W | None:
        """In the calling thread: wait up to `timeout` s for work handed over; None when none
        came (the thread is withdrawn; work handed over just then is still taken)."""
        spare: _Spare[W] = _Spare(threading.current_thread())
        with self._lock:
            self._idle.append(spare)
        if spare.given.wait(timeout):
            return spare.work
        with self._lock:
            if spare in self._idle:
                self._idle.remove(spare)
                return None
        spare.given.wait()  # taken from the list just now: its work is coming
        return spare.work


class _Spare(Generic[W]):
    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.given = threading.Event()
        self.work: W | None = None

    def give(self, work: W) -> None:
        self.work = work
        self.given.set()
