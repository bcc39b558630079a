"""The executor node: a report loop that leases tasks, slots that run them, a clean drain.

One report is in flight at a time, so the judicator always sees a consistent picture of what
this executor holds. While slots are free the report long-polls (the judicator answers as soon
as work is queued); when a task finishes during a long-poll, a `wake` call on a second
connection ends it so the result is handed in at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from khala.config import ExecutorSettings
from khala.discovery.base import Discovery
from khala.errors import KhalaError, RemoteError, Unavailable
from khala.executor.judge import JudgeContext, run_any
from khala.judging.presets import HostLanguage
from khala.model import Assignment, Language, Result, Status, Task, TaskBrief
from khala.rpc.client import JudicatorClient
from khala.sandbox.base import Sandbox, SignalBox

log = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0


@dataclass
class Slot:
    task_id: str
    status: int = Status.COMPILING
    cancel: threading.Event = field(default_factory=threading.Event)
    dropped: bool = False  # the judicator took it back: do not hand in a result
    thread: threading.Thread | None = None
    signals: SignalBox = field(default_factory=SignalBox)  # API v2 signals for its step


class ExecutorNode:
    def __init__(self, settings: ExecutorSettings, sandbox: Sandbox, discovery: Discovery,
                 judging: JudgeContext) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.name = settings.resolved_name()
        self.capacity = settings.resolved_slots()
        self.judging = judging
        judging.slots = self  # cases of a judged task may borrow free slots
        self.languages = [Language(h.name, h.version) for h in judging.languages.values()]
        self._lent = 0  # free slots lent to the cases of running judged tasks
        self.client = JudicatorClient(discovery, settings.rpc_timeout)
        self._lock = threading.Lock()
        self._slots: dict[str, Slot] = {}
        self._finished: list[Task] = []  # finished tasks (id, status, result) to hand in
        self._kick = threading.Event()  # something to report now
        self._wake_needed = threading.Event()
        self._polling = False  # a long-poll is in flight (at self._judicator, if known)
        self._draining = threading.Event()
        self._forced = threading.Event()
        self._stopped = threading.Event()
        self._judicator: str | None = None
        self._early_empty = False  # the last long-poll ended early with nothing
        self._waker = threading.Thread(target=self._wake_loop, name="khala-waker", daemon=True)

    # ------------------------------------------------------------------ control

    def drain(self) -> None:
        """Stop taking work; finish what is held, hand it in, then return from run()."""
        log.info("executor %s draining (%d running)", self.name, len(self._slots))
        self._draining.set()
        self._poke()

    def force(self) -> None:
        """Kill running tasks, hand them back to the queue, and stop."""
        log.warning("executor %s stopping now; running tasks go back to the queue", self.name)
        self._forced.set()
        self._draining.set()
        with self._lock:
            for slot in self._slots.values():
                slot.dropped = True
                slot.cancel.set()
        self._poke()

    def _poke(self) -> None:
        self._kick.set()
        self._wake_needed.set()

    # ------------------------------------------------------------------ main loop

    def run(self) -> None:
        self._waker.start()
        backoff = BACKOFF_MIN
        try:
            while not self._done():
                pause = self._report_once()
                if pause is None:  # no judicator answered: back off
                    self._kick.wait(backoff)
                    backoff = min(BACKOFF_MAX, backoff * 2)
                    continue
                backoff = BACKOFF_MIN
                if pause:
                    self._kick.wait(pause)  # cut short when a task finishes
        finally:
            self._stopped.set()
            self._wake_needed.set()
            self._final_handback()

    def _done(self) -> bool:
        with self._lock:
            idle = not self._slots and not self._finished
        return self._draining.is_set() and (idle or self._forced.is_set())

    def _snapshot(self) -> tuple[list[Task], list[TaskBrief], int]:
        with self._lock:
            complete = list(self._finished)
            executing = [
                TaskBrief(id=s.task_id, status=Status(s.status), executor=self.name)
                for s in self._slots.values()
                if not s.dropped
            ]
            free = self.capacity - len(self._slots) - self._lent
            vacant = 0 if self._draining.is_set() else free
        return complete, executing, max(0, vacant)

    def offer_languages(self, found: dict[str, HostLanguage]) -> None:
        """Offer the presets `found` from the next report on (detection ends after start)."""
        self.judging.languages = dict(found)
        self.languages = [Language(h.name, h.version) for h in found.values()]
        self._poke()  # report them now, ending a long-poll that holds the old list

    # ------------------------------------------------------------------ lending (CaseSlots)

    def borrow(self, wanted: int) -> int:
        """Lend up to `wanted` free slots to a judged task's cases (none while draining)."""
        with self._lock:
            if self._draining.is_set():
                return 0
            lent = max(0, min(wanted, self.capacity - len(self._slots) - self._lent))
            self._lent += lent
        return lent

    def give_back(self, count: int) -> None:
        with self._lock:
            self._lent = max(0, self._lent - count)
        self._poke()  # the slots are free again: report them

    def _report_once(self) -> float | None:
        """One report. Returns None when no judicator answered, else the seconds to pause
        before the next report (0 = go again at once)."""
        self._kick.clear()
        complete, executing, vacant = self._snapshot()
        hold = self.settings.heartbeat if vacant and not complete else 0.0
        started = time.monotonic()
        try:
            self._polling = bool(hold)
            answer = self.client.report(
                self.name,
                complete,
                executing,
                vacant,
                int(hold * 1000),
                self.languages,
                timeout=self.settings.rpc_timeout + hold,
                prefer=self._judicator,
            )
        except RemoteError as exc:  # a judicator answered ERROR: stick to it all the same
            self._judicator = exc.address
            log.warning("report refused: %s", exc)
            return None
        except Unavailable as exc:
            log.warning("report failed: %s", exc)
            return None
        except KhalaError as exc:
            log.warning("report refused: %s", exc)
            return None
        finally:
            self._polling = False
        self._judicator = answer.judicator
        self._handed_in(complete)
        if self._apply(answer) or complete:
            self._early_empty = False
            return 0.0
        if not hold:
            return self.settings.heartbeat  # no free slot: report at heartbeat pace
        # A long-poll that ended early with nothing (a stale wake, or a judicator that does not
        # hold calls): go again at once the first time, pace ourselves if it keeps happening.
        left = hold - (time.monotonic() - started)
        repeated, self._early_empty = self._early_empty, left > 0.05 * hold
        return left if repeated and self._early_empty else 0.0

    def _handed_in(self, complete: list[Task]) -> None:
        sent = {id(t) for t in complete}
        with self._lock:
            self._finished = [t for t in self._finished if id(t) not in sent]

    def _apply(self, answer: Assignment) -> bool:
        cancel_ids = answer.cancel
        with self._lock:
            for task_id in cancel_ids:
                slot = self._slots.get(task_id)
                if slot is not None:
                    log.info("task %s taken back by the judicator; stopping it", task_id)
                    slot.dropped = True
                    slot.cancel.set()
            for task_id, signum in answer.signals:
                slot = self._slots.get(task_id)
                if slot is not None:
                    log.info("task %s: signal %d for its running step", task_id, signum)
                    slot.signals.send(signum)
        for task in answer.assign:
            self._start(task.id, task)
        for task_id, error in answer.undecodable:
            self._start(task_id, None, error)
        started = answer.assign or answer.undecodable
        return bool(started) or any(i in self._slots for i in cancel_ids)

    # ------------------------------------------------------------------ slots

    def _start(self, task_id: str, task: Task | None, error: str = "") -> None:
        """Run `task` in a new slot; `task` None: it could not be decoded (`error`)."""
        slot = Slot(task_id=task_id)
        with self._lock:
            if self._forced.is_set() or task_id in self._slots:
                return
            self._slots[task_id] = slot
        slot.thread = threading.Thread(
            target=self._run_slot,
            args=(slot, task, error),
            name=f"khala-task-{task_id}",
            daemon=True,
        )
        slot.thread.start()

    def _run_slot(self, slot: Slot, task: Task | None, error: str) -> None:
        if task is None:  # undecodable task: report it as our failure, not lose it
            status = int(Status.UNKNOWN_ERROR)
            result = Result(compile_error=f"[khala] bad task: {error}")
        else:
            status, result = run_any(
                task,
                self.sandbox,
                self.settings,
                self.judging,
                slot.cancel,
                on_status=lambda s: self._set_status(slot, s),
                signals=slot.signals,
            )
        with self._lock:
            self._slots.pop(slot.task_id, None)
            if not slot.dropped:
                self._finished.append(
                    Task(
                        id=slot.task_id,
                        done=True,
                        status=Status(status),
                        executor=self.name,
                        result=result,
                    )
                )
        log.info(
            "task %s finished with status %d%s",
            slot.task_id,
            status,
            " (dropped)" if slot.dropped else "",
        )
        self._poke()

    def _set_status(self, slot: Slot, status: int) -> None:
        slot.status = status
        self._poke()  # let clients see Running promptly

    # ------------------------------------------------------------------ wake + exit

    def _wake_loop(self) -> None:
        while not self._stopped.is_set():
            self._wake_needed.wait()
            self._wake_needed.clear()
            if not self._polling or self._stopped.is_set():
                continue
            try:
                self.client.wake(self.name, timeout=2.0, prefer=self._judicator)
            except Unavailable:
                pass  # the long-poll ends by its own deadline

    def _final_handback(self) -> None:
        """When forced: tell the judicator we hold nothing, so our tasks are requeued now."""
        if not self._forced.is_set():
            return
        deadline = time.monotonic() + 5.0
        with self._lock:
            threads = [s.thread for s in self._slots.values() if s.thread]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            complete = list(self._finished)
        try:
            self.client.report(self.name, complete, [], 0, 0, self.languages, timeout=5.0)
        except Unavailable as exc:
            log.warning("final hand-back failed (the reaper will requeue): %s", exc)

    def close(self) -> None:
        self.client.close()
        self.sandbox.close()
