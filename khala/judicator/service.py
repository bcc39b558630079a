"""The Judicator Thrift service: wire structs in, store calls, wire structs out."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from khala import model
from khala.config import JudicatorSettings
from khala.discovery.base import Registration
from khala.errors import InvalidInput, TooLarge
from khala.judicator.notifier import DoneWatch, Notifier
from khala.judicator.rules import final_status, plan_report, progress_status
from khala.judicator.tasks import TaskApi
from khala.model import Code, Result, SearchQuery, Status, Task
from khala.rpc import convert
from khala.rpc import judicator_thrift as T
from khala.rpc.handler_v2 import TaskApiHandler
from khala.store.base import Store
from khala.validation import Maxima, validate_task

log = logging.getLogger(__name__)

# While long-polling, re-check the store at least this often: catches work queued or tasks
# cancelled through another judicator when no cross-judicator wake-up reached us.
FALLBACK_CHECK_SECONDS = 0.5


def _guard(failure: Callable[[], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn an unexpected exception (store down, bug) into the method's ERROR answer."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except Exception:
                log.exception("judicator %s failed", method.__name__)
                return failure()

        return wrapper

    return decorate


class JudicatorService(TaskApiHandler):
    def __init__(
        self,
        store: Store,
        settings: JudicatorSettings,
        notifier: Notifier,
        registration: Registration,
    ) -> None:
        self.store = store
        self.settings = settings
        self.notifier = notifier
        self.registration = registration
        self.done = DoneWatch()
        self.tasks = TaskApi(store, settings, self.done, self._work_queued, self._changed)
        registration.set_finished_callback(self.done.finished)

    # ------------------------------------------------------------------ client methods

    def ping(self) -> int:
        return Code.OK

    @_guard(lambda: T.AddReturn(result=Code.ERROR, id=None))
    def add(self, task: Any) -> Any:
        s = self.settings
        maxima = Maxima(s.max_memory_limit, s.max_cpu_limit, s.max_pids_limit, s.max_output_limit)
        try:
            new = convert.task_from_thrift(task)
            validate_task(new, s.max_task_size, s.zip_max_bytes, s.zip_max_files, maxima)
        except TooLarge as exc:
            log.info("add refused: %s", exc)
            return T.AddReturn(result=Code.TOO_LARGE, id=None)
        except InvalidInput as exc:
            log.info("add refused: %s", exc)
            return T.AddReturn(result=Code.INVALID_INPUT, id=None)
        new.id, new.add_time, new.report_time = model.new_id(), model.now(), ""
        new.done, new.status, new.executor, new.result = False, Status.PENDING, None, None
        self.store.add(new)
        self._work_queued()
        return T.AddReturn(result=Code.OK, id=new.id)

    @_guard(lambda: Code.ERROR)
    def cancel(self, id: str) -> int:  # noqa: A002 - wire name
        if not model.valid_id(id):
            return Code.INVALID_INPUT
        if not self.store.cancel(id, model.now()):
            return Code.NOT_EXIST
        self.notifier.notify()  # long-polls holding this task hand the cancel out at once
        self._finished([id])
        return Code.OK

    @_guard(lambda: T.SearchReturn(result=Code.ERROR, pages=0, tasks=[]))
    def search(
        self,
        id: str | None,
        user: int | None,
        start_time: str | None,  # noqa: A002
        end_time: str | None,
        old_to_new: bool | None,
        limit: int | None,
        page: int | None,
    ) -> Any:
        try:
            query = _search_query(id, user, start_time, end_time, old_to_new, limit, page)
        except (InvalidInput, ValueError):
            return T.SearchReturn(result=Code.INVALID_INPUT, pages=0, tasks=[])
        total, briefs = self.store.search(query)
        return T.SearchReturn(
            result=Code.OK,
            pages=model.page_count(total, query.limit),
            tasks=[convert.brief_to_thrift(b) for b in briefs],
        )

    @_guard(lambda: T.GetReturn(result=Code.ERROR, task=None))
    def get(self, id: str) -> Any:  # noqa: A002
        if not model.valid_id(id):
            return T.GetReturn(result=Code.INVALID_INPUT, task=None)
        task = self.store.get(id)
        if task is None:
            return T.GetReturn(result=Code.NOT_EXIST, task=None)
        return T.GetReturn(result=Code.OK, task=convert.task_to_thrift(task))

    @_guard(lambda: T.ExecutorsReturn(result=Code.ERROR, executors=[]))
    def executors(self) -> Any:
        infos = self.store.executors(model.time_before(self.settings.expiry))
        return T.ExecutorsReturn(
            result=Code.OK, executors=[convert.executor_to_thrift(i) for i in infos]
        )

    def wake(self, executor: str) -> int:
        self.notifier.wake(executor or "")
        return Code.OK

    # ------------------------------------------------------------------ executor methods

    @_guard(lambda: T.ReportReturn(result=Code.ERROR, cancel=[], assign=[]))
    def report(
        self,
        executor: str,
        complete: list[Any] | None,
        executing: list[Any] | None,
        vacant: int | None,
        wait_ms: int | None = None,
    ) -> Any:
        if not executor:
            return T.ReportReturn(result=Code.INVALID_INPUT, cancel=[], assign=[])
        vacant = max(0, vacant or 0)
        finished = [_completed(t) for t in complete or [] if t is not None and t.id]
        running = [convert.brief_from_thrift(b) for b in executing or [] if b is not None and b.id]
        generation = self.notifier.generation()
        cancel = self._apply_report(executor, finished, running)
        signals = self.store.take_signals([b.id for b in running if b.id not in cancel])
        assigned = self.store.assign(executor, vacant, model.now()) if vacant else []
        hold = min(max(0, wait_ms or 0), self.settings.max_wait_ms) / 1000.0
        if vacant and not assigned and not cancel and not signals and hold > 0:
            assigned, cancel, signals = self._long_poll(
                executor, running, vacant, generation, hold
            )
        return T.ReportReturn(
            result=Code.OK,
            cancel=[T.TaskBrief(id=i) for i in cancel],
            assign=[convert.task_to_thrift(t) for t in assigned],
            signals=[T.Signal(id=i, signum=n) for i, n in signals],
        )

    def _apply_report(
        self, executor: str, finished: list[Task], running: list[model.TaskBrief]
    ) -> list[str]:
        now = model.now()
        self.store.touch_executor(executor, now)
        held = {b.id for b in self.store.held_by(executor)}
        plan = plan_report(held, finished, running)
        cancel = list(plan.cancel)
        recorded = []
        for task in plan.record:
            if self.store.finish(
                task.id, executor, final_status(task.status), task.result or Result(), now
            ):
                recorded.append(task.id)
            else:
                log.info("late result for %s from %s dropped", task.id, executor)
        self._finished(recorded)
        for brief in plan.progress:
            if not self.store.progress(brief.id, executor, progress_status(brief.status), now):
                cancel.append(brief.id)
        requeued = [i for i in plan.lost if self.store.requeue(i, executor, now)]
        if requeued:
            log.warning("executor %s lost %s; back to the queue", executor, requeued)
            self._work_queued()
        return cancel

    def _long_poll(
        self,
        executor: str,
        running: list[model.TaskBrief],
        vacant: int,
        generation: int,
        hold: float,
    ) -> tuple[list[Task], list[str], list[tuple[str, int]]]:
        """Hold the report until work, a cancel or a signal for this executor appears, it is
        woken, or `hold` seconds pass."""
        deadline = time.monotonic() + hold
        running_ids = {b.id for b in running}
        while (remaining := deadline - time.monotonic()) > 0:
            woken = self.notifier.wait(executor, generation, min(remaining, FALLBACK_CHECK_SECONDS))
            generation = self.notifier.generation()
            if self.store.has_queued():
                assigned = self.store.assign(executor, vacant, model.now())
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
            if woken == "wake":
                break
        return [], [], []

    def _changed(self) -> None:
        """A task was cancelled or signalled: long-polls here and elsewhere re-check."""
        self._work_queued()

    def _finished(self, task_ids: list[str]) -> None:
        """Tasks recorded done here: wake their API v2 waiters here and on other judicators."""
        if not task_ids:
            return
        self.tasks.finished(task_ids)
        try:
            self.registration.notify_finished(task_ids)
        except Exception:  # a missed announcement costs waiters elsewhere their fallback check
            log.warning("could not announce finished tasks to other judicators", exc_info=True)

    def _work_queued(self) -> None:
        self.notifier.notify()
        try:
            self.registration.notify_added()
        except Exception:  # a missed cross-judicator wake only costs the fallback check
            log.warning("could not announce queued work to other judicators", exc_info=True)


def _completed(task: Any) -> Task:
    """The parts of a handed-in task that count: id, status, result. Lenient by design: an
    executor's result must not be lost over a malformed text field."""
    try:
        result = convert.result_from_thrift(task.result) or Result()
    except InvalidInput as exc:
        result = Result(compile_error=f"[khala] result could not be decoded: {exc}")
        return Task(id=task.id, status=Status.UNKNOWN_ERROR, result=result)
    return Task(id=task.id, status=task.status if task.status is not None else -1, result=result)


def _search_query(
    id: str | None,
    user: int | None,
    start_time: str | None,  # noqa: A002
    end_time: str | None,
    old_to_new: bool | None,
    limit: int | None,
    page: int | None,
) -> SearchQuery:
    if id is not None and not model.valid_id(id):
        raise InvalidInput("id must be 24 lowercase hex characters")
    for value in (user, limit, page):
        if value is not None and not model.valid_int(value):
            raise InvalidInput("user, limit and page must be within 0..2147483647")
    return SearchQuery(
        id=id or None,
        user=user,
        start_time=model.canonical_time(start_time) if start_time else None,
        end_time=model.canonical_time(end_time) if end_time else None,
        old_to_new=bool(old_to_new),
        limit=limit or 0,
        page=page or 0,
    )
