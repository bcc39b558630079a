"""The leader's reaper: executors silent past the expiry lose their tasks to the queue."""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Collection, Iterable

from khala import model
from khala.judicator.leader_loop import LeaderLoop
from khala.model import TaskBrief
from khala.rules import lifecycle
from khala.store.base import Store

log = logging.getLogger(__name__)


def cutoff(at: _dt.datetime, expiry: float) -> str:
    """The report time before which a holder counts as silent at `at` (naive UTC)."""
    return model.format_time(at - _dt.timedelta(seconds=expiry))


def choose(
    stale: Iterable[TaskBrief], before: str, live: Collection[str] = ()
) -> list[tuple[str, str]]:
    """The reaper's choice: the (task id, holder) pairs to requeue out of the store's stale
    selection — those still in the life cycle's STALE selection at `before` (undone, held,
    not reported on since before it) whose holder is not among the `live` executors (those
    that reported at or after `before`). A task's own report time alone does not make it
    silent: a live executor's report may be held up writing another task (a FerretDB lock its
    dead judicator left) and then writes nothing about this one, yet the executor still runs
    it. Its next report requeues whatever it no longer runs. Each pair is requeued only while
    that holder still holds the task."""
    where = lifecycle.select(lifecycle.STALE, before=before)
    return [
        (brief.id, brief.executor)
        for brief in stale
        if brief.executor is not None
        and brief.executor not in live
        and lifecycle.allows(
            where,
            lifecycle.State(done=brief.done, status=brief.status, executor=brief.executor,
                            report_time=brief.report_time),
        )
    ]


def reap_once(store: Store, expiry: float, at: _dt.datetime | None = None) -> list[str]:
    """Requeue undone tasks whose holder has not reported within `expiry` seconds (neither
    about the task nor at all) and forget silent executors. Returns the requeued task ids."""
    at = at or _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    before, now = cutoff(at, expiry), model.format_time(at)
    live = {x.hostname for x in store.executors(before)}
    requeued = [
        task_id
        for task_id, holder in choose(store.stale_tasks(before), before, live)
        if store.requeue(task_id, holder, now)
    ]
    removed = store.remove_executors(before)
    if requeued:
        log.warning("reaper: requeued %d task(s) of silent executors: %s", len(requeued), requeued)
    if removed:
        log.warning("reaper: removed silent executor(s) %s", removed)
    return requeued


class Reaper(LeaderLoop):
    """Runs reap_once every `interval` seconds while `is_leader()` says so."""

    def __init__(
        self,
        store: Store,
        expiry: float,
        interval: float,
        is_leader: Callable[[], bool],
        on_requeue: Callable[[], None],
    ) -> None:
        super().__init__("reaper", interval, is_leader, self._pass)
        self._store = store
        self._expiry = expiry
        self._on_requeue = on_requeue

    def _pass(self) -> None:
        if reap_once(self._store, self._expiry):
            self._on_requeue()
