"""An executor's slots: the tasks it runs (one thread each), keyed by task id. Finished ones go
to the outbox (khala/executor/outbox.py) until they are handed in; a slot thread whose task
ended waits a while as a spare (khala/executor/spares.py); a step's status change asks for a
report only if it lasts `progress_delay` (khala/executor/delays.py).

A slot thread never dies of an exception: whatever escapes the task runner ends the task as
Unknown error with the exception in its compile error, the result goes to the outbox and the
slot is freed. A task the judicator took back, or that a stop killed, is "dropped": it is no
longer reported as executing (so the judicator requeues it). The result of a run the judicator
stopped still goes to the outbox: a cancelled task keeps the output it had (the judicator
records it only for a Cancelled task this executor ran, and drops it otherwise); a stop's kill
discards it (its tasks are requeued and run again).

A task assigned while no slot is free (the executor asked for tasks ahead of its slots, the
`ahead` setting, or a judged task borrowed the slot a report offered) waits in a local queue,
reported as executing with the status the judicator gave it (Compiling), and starts the moment
a slot frees: in the thread that finished the previous task (or the one giving lent slots
back), with no polling. A queued task that is dropped, or handed back by a drain (`close`),
never runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from khala.executor.delays import Delayed
from khala.executor.outbox import Outbox
from khala.executor.spares import SPARE_SECONDS, Spares
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
    dropped: bool = False  # taken back or killed: not reported as executing
    hand_in: bool = False  # dropped, yet its result is handed in (a cancel: output so far)
    thread: threading.Thread | None = None
    signals: SignalBox = field(default_factory=SignalBox)  # API v2 signals for its step
    # What it runs, kept while it waits in the queue (None once it started: `task` None with an
    # `error` is an undecodable task, which ends at once as Unknown error).
    task: Task | None = None
    error: str = ""


@dataclass
class Snapshot:
    """What the executor holds at one moment, as a report states it."""

    complete: list[Task]  # finished, not yet handed in
    executing: list[TaskBrief]  # running and not dropped, then those queued for a slot
    free: int  # slots free (capacity minus every running slot, dropped ones included)
    queued: int = 0  # tasks waiting for a slot (none while a slot is free)


class Slots:
    def __init__(
        self,
        executor: str,
        capacity: int,
        runner: TaskRunner,
        on_change: Callable[[], None],
        progress_delay: float = 0.0,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        self.executor = executor
        self.capacity = capacity
        self._runner = runner
        self._on_change = on_change  # a task changed status or finished: report soon
        # A task finished (only a result to hand in); None: on_change.
        self._on_finish = on_finish or on_change
        self._lock = threading.Lock()
        self._running: dict[str, Slot] = {}
        # Assigned while no slot was free: they start in this order as slots free.
        self._queue: dict[str, Slot] = {}
        self.outbox = Outbox(self._lock)  # finished, waiting to be handed in
        self._closed = False  # start() refuses new tasks
        self._lent = 0  # free slots lent to the cases of running judged tasks (borrow)
        # A step's new status asks for a report only if it still holds this many seconds
        # later: a step that ends sooner is reported by its result alone (0: at once).
        self._progress: Delayed[Slot, Status] = Delayed(progress_delay, self._status_due)
        self._spares: Spares[Slot] = Spares()
        self._emptied = threading.Condition(self._lock)  # a running slot ended

    # ------------------------------------------------------------------ queries

    def snapshot(self, claim: bool = False) -> Snapshot:
        """What the executor holds now: every finished task not yet handed in, also one a
        hand-in carries (a report always states all it holds; a result recorded twice is
        dropped the second time). `claim`: they go into a report, so a hand-in started
        later (`outbox.claim_results`) leaves them out until handed in or unclaimed."""
        with self._lock:
            complete = self.outbox.listed_locked(claim)
            held = [s for s in self._running.values() if not s.dropped]
            return Snapshot(
                complete=complete,
                executing=[
                    TaskBrief(id=s.task_id, status=s.status, executor=self.executor)
                    for s in held + list(self._queue.values())
                ],
                free=self._free(),
                queued=len(self._queue),
            )

    def _free(self) -> int:
        """Slots free now (the lock held): never negative, whatever is lent."""
        return max(0, self.capacity - len(self._running) - self._lent)

    def running_ids(self) -> set[str]:
        """The tasks held here: running (not dropped) or queued for a slot."""
        with self._lock:
            return {i for i, s in self._running.items() if not s.dropped} | set(self._queue)

    def busy(self) -> bool:
        """Anything running (dropped slots still ending included), queued or waiting to be
        handed in."""
        with self._lock:
            return bool(self._running or self._queue or len(self.outbox))

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
            ready = self._take_queued()
        for slot in ready:  # queued tasks take the slots back first
            self._spawn(slot)
        self._notify()  # free again: report them

    # ------------------------------------------------------------------ changes

    def drop(self, task_ids: list[str], hand_in: bool = True) -> bool:
        """Stop these tasks; their results are handed in when `hand_in` (what a stopped run
        had), else discarded. True if any of them was running."""
        hit = False
        with self._lock:
            for task_id in task_ids:
                if self._queue.pop(task_id, None) is not None:
                    log.info("task %s taken back before it ran", task_id)
                    hit = True
                    continue
                slot = self._running.get(task_id)
                if slot is not None and not slot.dropped:
                    log.info("task %s taken back; stopping it", task_id)
                    slot.dropped = True
                    slot.hand_in = hand_in
                    slot.cancel.set()
                    hit = True
        return hit

    def signal(self, task_id: str, signum: int) -> bool:
        """Send `signum` to the running step of `task_id` (one queued for a slot gets it in
        its first step, as a signal between steps waits for the next); False if it is not
        held here."""
        with self._lock:
            slot = self._running.get(task_id) or self._queue.get(task_id)
        if slot is None or slot.dropped:
            return False
        log.info("task %s: signal %d for its running step", task_id, signum)
        slot.signals.send(signum)
        return True

    def drop_all(self) -> list[str]:
        """Stop every running task and forget the queued ones (a stop's kill); returns their
        ids."""
        with self._lock:
            self._closed = True
            ids = [i for i, s in self._running.items() if not s.dropped] + list(self._queue)
        self.drop(ids, hand_in=False)
        return ids

    def close(self) -> list[str]:
        """Take no new task from now on, and hand back the queued ones (they never run: no
        longer reported, the judicator requeues them). Returns their ids."""
        with self._lock:
            self._closed = True
            handed_back = list(self._queue)
            self._queue.clear()
        return handed_back

    def start(self, task_id: str, task: Task | None, error: str = "") -> bool:
        """Run `task` in a new slot thread, or queue it until a slot frees when none is free;
        `task` None: it could not be decoded (`error`), so it ends at once as Unknown error.
        False when refused (closed, or already held)."""
        slot = Slot(task_id=task_id, task=task, error=error)
        with self._lock:
            if self._closed or task_id in self._running or task_id in self._queue:
                return False
            stopped = self.outbox.get_locked(task_id)
            if stopped is not None and stopped.status == Status.CANCELLED:
                # its stopped run's result is not handed in yet: the same id may not be both
                # running and complete here (refused, the judicator requeues it)
                return False
            if self._free() <= 0:
                self._queue[task_id] = slot
                return True
            self._running[task_id] = slot
        self._spawn(slot)
        return True

    def _spawn(self, slot: Slot) -> None:
        """Run `slot` (already counted as running) in a spare slot thread, or a new one."""
        slot.thread = self._spares.hand(slot)
        if slot.thread is not None:
            return
        slot.thread = threading.Thread(
            target=self._work, args=(slot,), name=f"khala-task-{slot.task_id}", daemon=True
        )
        slot.thread.start()

    def _work(self, first: Slot) -> None:
        """A slot thread: runs its task, then each queued task a finish lets it take, then
        waits up to SPARE_SECONDS as a spare for the next slot `_spawn` hands it."""
        slot: Slot | None = first
        while slot is not None:
            threading.current_thread().name = f"khala-task-{slot.task_id}"
            slot = self._run_one(slot)
            if slot is None:
                slot = self._spares.wait(SPARE_SECONDS)

    def _take_queued(self) -> list[Slot]:
        """Move queued tasks into the free slots, oldest first (the lock held); the caller
        runs them."""
        ready = []
        while self._queue and self._free() > 0 and not self._closed:
            slot = self._queue.pop(next(iter(self._queue)))
            self._running[slot.task_id] = slot
            ready.append(slot)
        return ready

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` s for every running slot to end; True if none is left."""
        with self._lock:
            return self._emptied.wait_for(lambda: not self._running, timeout)

    # ------------------------------------------------------------------ the slot thread

    def _run_one(self, slot: Slot) -> Slot | None:
        """Run one task to its end; the queued task that takes its slot, if any."""
        task, error, slot.task = slot.task, slot.error, None
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
            following = self._finish(slot, status, result)
        return following

    def _finish(self, slot: Slot, status: int, result: Result) -> Slot | None:
        """Record the end of `slot`'s task; the queued task this thread runs next, if any (more
        of them, after lent slots came back meanwhile, get threads of their own)."""
        try:
            final = Status(status)
        except ValueError:
            final = Status.UNKNOWN_ERROR
        with self._lock:
            self._running.pop(slot.task_id, None)
            self._emptied.notify_all()
            if not slot.dropped or slot.hand_in:
                # a stopped run's result is handed in as Cancelled: the judicator only keeps it
                # with a Cancelled task, never finishes a task with it
                self.outbox.put_locked(Task(
                    id=slot.task_id, done=True, executor=self.executor, result=result,
                    status=Status.CANCELLED if slot.dropped else final))
            ready = self._take_queued()
            if ready:
                ready[0].thread = threading.current_thread()  # runs next in this thread
        log.info(
            "task %s finished with status %d%s",
            slot.task_id,
            final,
            " (dropped)" if slot.dropped else "",
        )
        self._notify(finished=True)  # hand the result in (and ask for the next task ahead)
        for other in ready[1:]:
            self._spawn(other)
        return ready[0] if ready else None

    def _set_status(self, slot: Slot, status: int) -> None:
        try:
            slot.status = Status(status)
        except ValueError:
            return
        if self._progress.delay <= 0:
            self._notify()  # let clients see Running promptly
            return
        self._progress.later(slot, slot.status)

    def _status_due(self, slot: Slot, status: Status) -> None:
        """`progress_delay` after a status change: report it if the step still runs in it."""
        with self._lock:
            current = self._running.get(slot.task_id) is slot and not slot.dropped
        if current and slot.status == status:
            self._notify()

    def _notify(self, finished: bool = False) -> None:
        """Ask for a report; `finished`: only a result to hand in (no status to report)."""
        try:
            (self._on_finish if finished else self._on_change)()
        except Exception:  # a failed poke only delays the next report to its heartbeat
            log.exception("slot change notification failed")
