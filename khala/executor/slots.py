"""An executor's slots: the tasks it runs (one thread each) and the outbox of finished ones
waiting to be handed in, both keyed by task id.

A slot thread never dies of an exception: whatever escapes the task runner ends the task as
Unknown error with the exception in its compile error, the result goes to the outbox and the
slot is freed. A task the judicator took back, or that a stop killed, is "dropped": it is no
longer reported as executing (so the judicator requeues it) and its result is discarded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from khala.model import Result, Status, Task, TaskBrief
from khala.sandbox.base import SignalBox

log = logging.getLogger(__name__)

#: What runs one task: (task, cancel event, status callback, signals for its running step) →
#: (final status, result).
TaskRunner = Callable[
    [Task, threading.Event, Callable[[int], None], SignalBox], tuple[int, Result]
]


@dataclass
class Slot:
    task_id: str
    status: Status = Status.COMPILING
    cancel: threading.Event = field(default_factory=threading.Event)
    dropped: bool = False  # taken back or killed: not reported, result discarded
    thread: threading.Thread | None = None
    signals: SignalBox = field(default_factory=SignalBox)  # API v2 signals for its step


@dataclass
class Snapshot:
    """What the executor holds at one moment, as a report states it."""

    complete: list[Task]  # finished, not yet handed in
    executing: list[TaskBrief]  # running and not dropped
    free: int  # slots free (capacity minus every running slot, dropped ones included)


class Slots:
    def __init__(
        self,
        executor: str,
        capacity: int,
        runner: TaskRunner,
        on_change: Callable[[], None],
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.executor = executor
        self.capacity = capacity
        self._runner = runner
        self._on_change = on_change  # a task finished (or a slot freed): report now
        self._on_progress = on_progress or on_change  # a running task's status changed
        self._lock = threading.Lock()
        self._running: dict[str, Slot] = {}
        self._outbox: dict[str, Task] = {}
        self._closed = False  # start() refuses new tasks
        self._lent = 0  # free slots lent to the cases of running judged tasks (borrow)

    # ------------------------------------------------------------------ queries

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                complete=list(self._outbox.values()),
                executing=[
                    TaskBrief(id=s.task_id, status=s.status, executor=self.executor)
                    for s in self._running.values()
                    if not s.dropped
                ],
                free=max(0, self.capacity - len(self._running) - self._lent),
            )

    def running_ids(self) -> set[str]:
        with self._lock:
            return {i for i, s in self._running.items() if not s.dropped}

    def busy(self) -> bool:
        """Anything running (dropped slots still ending included) or waiting to be handed in."""
        with self._lock:
            return bool(self._running or self._outbox)

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def usage(self) -> list[tuple[str, int, SignalBox]]:
        """(task id, status, its SignalBox: the running step's live usage) of each task
        running and not dropped (executor statistics, khala/executor/stats.py)."""
        with self._lock:
            return [(s.task_id, int(s.status), s.signals) for s in self._running.values()
                    if not s.dropped]

    # ------------------------------------------------------------------ lending (judging)

    def borrow(self, wanted: int) -> int:
        """Lend up to `wanted` free slots to a judged task's cases (none once closed); lent
        slots are not free in snapshots, so the judicator assigns nothing into them."""
        with self._lock:
            if self._closed:
                return 0
            lent = max(0, min(wanted, self.capacity - len(self._running) - self._lent))
            self._lent += lent
        return lent

    def give_back(self, count: int) -> None:
        with self._lock:
            self._lent = max(0, self._lent - count)
        self._notify()  # free again: report them

    # ------------------------------------------------------------------ changes

    def handed_in(self, sent: list[Task]) -> None:
        """A judicator took these results: forget them (unless replaced since)."""
        with self._lock:
            for task in sent:
                if self._outbox.get(task.id) is task:
                    del self._outbox[task.id]

    def drop(self, task_ids: list[str]) -> bool:
        """Stop these tasks and discard their results. True if any of them was running."""
        hit = False
        with self._lock:
            for task_id in task_ids:
                slot = self._running.get(task_id)
                if slot is not None and not slot.dropped:
                    log.info("task %s taken back; stopping it", task_id)
                    slot.dropped = True
                    slot.cancel.set()
                    hit = True
        return hit

    def signal(self, task_id: str, signum: int) -> bool:
        """Send `signum` to the running step of `task_id`; False if it does not run here."""
        with self._lock:
            slot = self._running.get(task_id)
        if slot is None or slot.dropped:
            return False
        log.info("task %s: signal %d for its running step", task_id, signum)
        slot.signals.send(signum)
        return True

    def drop_all(self) -> list[str]:
        """Stop every running task (a stop's kill); returns their ids."""
        with self._lock:
            self._closed = True
            ids = [i for i, s in self._running.items() if not s.dropped]
        self.drop(ids)
        return ids

    def close(self) -> None:
        """Take no new task from now on."""
        with self._lock:
            self._closed = True

    def start(self, task_id: str, task: Task | None, error: str = "") -> bool:
        """Run `task` in a new slot thread; `task` None: it could not be decoded (`error`),
        so it ends at once as Unknown error. False when refused (closed, or already held)."""
        slot = Slot(task_id=task_id)
        with self._lock:
            if self._closed or task_id in self._running:
                return False
            self._running[task_id] = slot
        slot.thread = threading.Thread(
            target=self._run, args=(slot, task, error), name=f"khala-task-{task_id}", daemon=True
        )
        slot.thread.start()
        return True

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` s for every slot thread to end; True if none is left."""
        with self._lock:
            threads = [s.thread for s in self._running.values() if s.thread is not None]
        for thread in threads:
            thread.join(timeout)  # one shared bound is enough: killed steps end in ms
        return self.running() == 0

    # ------------------------------------------------------------------ the slot thread

    def _run(self, slot: Slot, task: Task | None, error: str) -> None:
        status, result = int(Status.UNKNOWN_ERROR), Result()
        try:
            if task is None:
                result = Result(compile_error=f"[khala] bad task: {error}".encode())
            else:
                status, result = self._runner(
                    task, slot.cancel, lambda s: self._set_status(slot, s), slot.signals
                )
        except BaseException as exc:  # noqa: B036 - nothing may kill a slot
            log.exception(
                "task %s: the runner raised; the task ends as Unknown error", slot.task_id
            )
            status = int(Status.UNKNOWN_ERROR)
            message = f"[khala] internal error: {type(exc).__name__}: {exc}"
            result = Result(compile_error=message.encode())
        finally:
            self._finish(slot, status, result)

    def _finish(self, slot: Slot, status: int, result: Result) -> None:
        try:
            final = Status(status)
        except ValueError:
            final = Status.UNKNOWN_ERROR
        with self._lock:
            self._running.pop(slot.task_id, None)
            if not slot.dropped:
                self._outbox[slot.task_id] = Task(
                    id=slot.task_id, done=True, status=final, executor=self.executor, result=result
                )
        log.info(
            "task %s finished with status %d%s",
            slot.task_id,
            final,
            " (dropped)" if slot.dropped else "",
        )
        self._notify()

    def _set_status(self, slot: Slot, status: int) -> None:
        try:
            slot.status = Status(status)
        except ValueError:
            return
        self._notify(self._on_progress)  # let clients see Running promptly

    def _notify(self, callback: Callable[[], None] | None = None) -> None:
        try:
            (callback or self._on_change)()
        except Exception:  # a failed poke only delays the next report to its heartbeat
            log.exception("slot change notification failed")
