"""The judicator's API on domain types: validation, store calls, long-polls.

Methods return domain values and raise the domain refusals (InvalidInput, TooLarge, NotFound);
khala/rpc/handler.py serves them over Thrift and turns those into return codes (anything else
into ERROR).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from khala import model
from khala.config import JudicatorSettings
from khala.discovery.base import ClusterBus
from khala.errors import InvalidInput, NotFound, Unavailable
from khala.jobs.model import RESERVED, is_run_key
from khala.judicator.files import FileApi
from khala.judicator.jobs import JobApi
from khala.judicator.notifier import DoneWatch, Notifier
from khala.judicator.offered import Capable, check_offered
from khala.judicator.problems import ProblemApi
from khala.judicator.rejudge import RejudgeApi
from khala.judicator.rules import (
    REFRESH_SHARE,
    Touches,
    final_status,
    needs_progress,
    plan_report,
    progress_status,
)
from khala.judicator.tasks import TaskApi
from khala.model import (
    FEATURE_IMAGES,
    Assignment,
    ExecutorInfo,
    Language,
    Result,
    SearchQuery,
    Status,
    Task,
    TaskBrief,
)
from khala.rules.limits import validate_task
from khala.store.base import Store
from khala.store.files import task_owner

log = logging.getLogger(__name__)

# A long-poll re-checks the store at least every `poll_fallback` seconds (settings), and never
# more often than this: catches work queued or tasks cancelled through another judicator when no
# cross-judicator wake-up reached us (etcd down, or static discovery).
MIN_FALLBACK_SECONDS = 0.01


def _check_id(task_id: str) -> None:
    if not model.valid_id(task_id):
        raise InvalidInput("id must be 24 lowercase hex characters")


class JudicatorService:
    #: The operations side (khala/judicator/ops.py), set by the judicator server.
    ops: Any = None

    def __init__(
        self,
        store: Store,
        settings: JudicatorSettings,
        notifier: Notifier,
        bus: ClusterBus,
    ) -> None:
        self.store = store
        self.settings = settings
        self.notifier = notifier
        self.bus = bus
        self.done = DoneWatch()  # API v2 waiters (?wait=)
        self._touches = Touches()  # when each executor's record was last written here
        self.problems = ProblemApi(store, settings)
        self.tasks = TaskApi(store, settings, self.done, self.announce, self.announce,
                             self.problems)
        self.jobs = JobApi(store, settings, self.tasks)
        self.files = FileApi(store.files, settings)
        self.images = self.tasks.images
        self.rejudges = RejudgeApi(store, settings, self.problems, self.announce)
        bus.on_finished(self.done.finished)

    # ------------------------------------------------------------------ client methods

    def ping(self) -> None:
        """Liveness: answering is the whole job."""

    def add(self, task: Task) -> str:
        """Store `task` as a new Pending task; returns its new id. Raises InvalidInput/TooLarge.
        A callback URL is checked and its webhook recorded, as `submit` does."""
        s = self.settings
        if task.key is not None and is_run_key(task.key):
            raise InvalidInput(RESERVED)
        task = self.problems.attach(task)  # the version it is judged against
        task = self.tasks.images.attach(task)
        validate_task(task, s)
        check_offered(task, self.tasks.live_languages)
        if self.ops is not None:
            self.ops.check(task)
        new = replace(task, id=model.new_id(), add_time=model.now(), report_time="")
        new.done, new.status, new.executor, new.result = False, Status.PENDING, None, None
        self.store.add(new)
        self.problems.confirm(new)
        self.tasks.images.confirm(new)
        if self.ops is not None:
            self.ops.created(new)
        self.announce()
        return new.id

    def cancel(self, id: str) -> None:  # noqa: A002 - wire name
        """Cancel an undone task. Raises InvalidInput (bad id), NotFound (unknown or done)."""
        _check_id(id)
        if not self.store.cancel(id, model.now()):
            raise NotFound(f"no undone task {id}")
        self.announce()  # the long-poll holding this task (here or elsewhere) hands it out
        self._finished([id])

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        """(pages, the page's briefs) of a search."""
        total, briefs = self.store.search(query)
        return model.page_count(total, query.limit), briefs

    def get(self, id: str) -> Task:  # noqa: A002
        """The whole task. Raises InvalidInput (bad id), NotFound."""
        _check_id(id)
        task = self.store.get(id)
        if task is None:
            raise NotFound(f"no task {id}")
        return task

    def executors(self) -> list[ExecutorInfo]:
        """Executors that reported within the expiry."""
        return self.store.executors(model.time_before(self.settings.expiry))

    def wake(self, executor: str, draining: bool = False) -> None:
        """End `executor`'s pending long-poll early; `draining`: it is stopping, so assign it
        nothing (for `expiry` seconds, or until it leaves), not even to a report in flight."""
        self.notifier.wake(executor, self.settings.expiry if draining else 0.0)

    def leave(self, executor: str) -> None:
        """`executor` stops: its unfinished tasks go back to the queue (Retrying) and its record
        goes, so executors() drops it at once. Raises InvalidInput for no executor."""
        if not executor:
            raise InvalidInput("leave needs an executor name")
        now = model.now()
        requeued = [
            b.id for b in self.store.held_by(executor) if self.store.requeue(b.id, executor, now)
        ]
        self.store.remove_executor(executor)
        self._touches.forget(executor)
        self.notifier.forget(executor)
        log.info("executor %s left%s", executor, f"; requeued {requeued}" if requeued else "")
        if requeued:
            self.announce()

    # ------------------------------------------------------------------ executor methods

    def report(
        self,
        executor: str,
        complete: list[Task],
        executing: list[TaskBrief],
        vacant: int,
        wait_ms: int = 0,
        languages: list[Language] | None = None,
        features: frozenset[str] = frozenset(),
    ) -> Assignment:
        """An executor's heartbeat (docs/rpc.md, report semantics): record `complete` (id,
        status, result), update `executing`, requeue what it lost, assign up to `vacant` tasks
        (only those whose language presets are among `languages`, and with an image only when
        `features` has FEATURE_IMAGES); with nothing to answer, hold up to `wait_ms`. Raises
        InvalidInput for no executor."""
        if not executor:
            raise InvalidInput("report needs an executor name")
        vacant = 0 if self.notifier.draining(executor) else max(0, vacant)
        offered = list(languages or [])
        names = frozenset(x.name for x in offered)
        can = Capable(names, FEATURE_IMAGES in features)
        generation = self.notifier.generation()
        cancel = self._apply_report(executor, complete, executing, offered)
        running = [b.id for b in executing if b.id not in cancel]
        signals = self.store.take_signals(running) if running else []
        assigned = self.store.assign(executor, vacant, model.now(), *can) if vacant else []
        hold = min(max(0, wait_ms), self.settings.max_wait_ms) / 1000.0
        # The ids of the handed-in results come back in `cancel` only so that the executor
        # forgets them: they need no prompt answer, so a report that hands results in may
        # long-poll too (its results are recorded already).
        handed = {t.id for t in complete}
        urgent = [i for i in cancel if i not in handed]
        if vacant and not assigned and not urgent and not signals and hold > 0:
            assigned, stop, signals = self._long_poll(
                executor, executing, vacant, generation, hold, can
            )
            cancel += [i for i in stop if i not in cancel]
        return Assignment(assign=assigned, cancel=cancel, signals=signals)

    def languages(self) -> list[Language]:
        """The language presets of the executors that reported within the expiry."""
        return self.tasks.live_languages()

    def _apply_report(
        self, executor: str, finished: list[Task], running: list[TaskBrief],
        languages: list[Language],
    ) -> list[str]:
        """The executor's own record first (rate-limited): it is the reaper's mark that the
        executor lives. Then results (each finish is conditional on this executor holding the
        task, so a late result is dropped by the store): a client waiting for one sees it done
        before the rest of the report is read. Then what it holds: progress is written only
        when the status changed or the task's report time ages, and tasks it lost are
        requeued. A write the store could not make now (None: the task's record held by
        another writer for long, khala/store/base.py) is left for the executor's next report:
        a result stays with the executor (its id is not in the answer's `cancel`), and the
        rest of the report is written, so the report never stalls past the executor's
        liveness and no other task of it is requeued and run twice."""
        now = model.now()
        if self._touches.due(executor, languages, self.settings.expiry * REFRESH_SHARE):
            try:
                self.store.touch_executor(executor, now, languages)
            except Exception:
                self._touches.forget(executor)  # not written: the next report tries again
                raise
        deferred = self._record_results(executor, finished, now)
        held = {b.id: b for b in self.store.held_by(executor)}
        plan = plan_report(set(held), finished, running)
        cancel = [i for i in plan.cancel if i not in deferred]
        fresh = model.time_before(self.settings.expiry * REFRESH_SHARE)
        for brief in plan.progress:
            status = progress_status(brief.status)
            if not needs_progress(held[brief.id], status, fresh):
                continue
            written = self.store.progress(brief.id, executor, status, now)
            if written is False:
                cancel.append(brief.id)
        requeued = [i for i in plan.lost if self.store.requeue(i, executor, now)]
        if requeued:
            log.warning("executor %s lost %s; back to the queue", executor, requeued)
            self.announce()
        return cancel

    def hand_in(self, executor: str, finished: list[Task]) -> None:
        """Record results outside a report (docs/rpc.md, `hand_in`), each only if `executor`
        still holds the task; its report long-poll, if one is open, goes on. Raises
        InvalidInput for no executor, Unavailable when a result could not be written yet (its
        task's record was held: the executor sends them all again with a report; those
        recorded meanwhile are then dropped as late)."""
        if not executor:
            raise InvalidInput("hand_in needs an executor name")
        deferred = self._record_results(executor, finished, model.now())
        if deferred:
            raise Unavailable(f"results of {sorted(deferred)} not written yet: their tasks' "
                              "records are held in the store")

    def _record_results(self, executor: str, finished: list[Task], now: str) -> set[str]:
        """Write the results of a report; the ids of those left for the next report (the
        store could not write them now)."""
        recorded, deferred = [], set()
        for task in {t.id: t for t in finished}.values():
            status, result = final_status(task.status), task.result or Result()
            if result.stored:  # before the result: the sweep keeps them from now on
                self.store.files.refer(task_owner(task.id),
                                       [ref.sha256 for ref in result.stored.values()])
            if task.status == Status.CANCELLED:  # a run its executor stopped: its output so
                # far, kept only by a Cancelled task that executor ran, never a finish
                written = self.store.keep(task.id, executor, result)
                if written:
                    log.info("cancelled task %s keeps its output so far", task.id)
                    continue
            else:
                written = self.store.finish(task.id, executor, status, result, now)
            if written:
                recorded.append(task.id)
            elif written is None:
                deferred.add(task.id)
            else:
                log.info("late result for %s from %s dropped", task.id, executor)
        self._finished(recorded)
        return deferred

    def _long_poll(
        self,
        executor: str,
        running: list[TaskBrief],
        vacant: int,
        generation: int,
        hold: float,
        can: Capable,
    ) -> tuple[list[Task], list[str], list[tuple[str, int]]]:
        """Hold the report until work, a cancel or a signal for this executor appears, it is
        woken, or `hold` seconds pass."""
        deadline = time.monotonic() + hold
        running_ids = {b.id for b in running}
        fallback = max(MIN_FALLBACK_SECONDS, self.settings.poll_fallback)
        while (remaining := deadline - time.monotonic()) > 0:
            woken = self.notifier.wait(executor, generation, min(remaining, fallback))
            generation = self.notifier.generation()
            if woken == "wake" or self.notifier.draining(executor):
                break  # it reports again at once (or it stops): its next report checks all
            if self.store.has_queued():
                assigned = self.store.assign(executor, vacant, model.now(), *can)
                if assigned:
                    return assigned, [], []
            if running_ids:
                held = {b.id for b in self.store.held_by(executor)}
                gone = sorted(running_ids - held)
                if gone:
                    return [], gone, []
                signals = self.store.take_signals(sorted(running_ids))
                if signals:
                    return [], [], signals
        return [], [], []

    def _finished(self, task_ids: list[str]) -> None:
        """Tasks recorded done here: wake their API v2 waiters here and on other judicators."""
        if not task_ids:
            return
        self.tasks.finished(task_ids)
        try:
            self.bus.announce_finished(task_ids)
        except Exception:  # a missed announcement costs waiters elsewhere their fallback check
            log.warning("could not announce finished tasks to other judicators", exc_info=True)

    def announce(self) -> None:
        """Work was queued, or a task cancelled or signalled: wake the report long-polls here
        and, through the cluster bus (etcd), on the other judicators."""
        self.notifier.notify()
        try:
            self.bus.announce_wake()
        except Exception:  # a missed cross-judicator wake only costs the fallback check
            log.warning("could not announce queued work to other judicators", exc_info=True)
