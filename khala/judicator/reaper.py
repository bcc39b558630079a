"""The leader's reaper: executors silent past the expiry lose their tasks to the queue."""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Iterable

from khala import lifecycle, model
from khala.judicator.leader_loop import LeaderLoop
from khala.model import TaskBrief
from khala.store.base import Store

log = logging.getLogger(__name__)


def cutoff(at: _dt.datetime, expiry: float) -> str:
    """The report time before which a holder counts as silent at `at` (naive UTC)."""
    return model.format_time(at - _dt.timedelta(seconds=expiry))


def choose(stale: Iterable[TaskBrief], before: str) -> list[tuple[str, str]]:
    """The reaper's choice: the (task id, holder) pairs to requeue out of the store's stale
    selection — those still in the life cycle's STALE selection at `before` (undone, held,
    silent since before it). Each is requeued only while that holder still holds it."""
    where = lifecycle.select(lifecycle.STALE, before=before)
    return [
        (brief.id, brief.executor)
        for brief in stale
        if brief.executor is not None
        and lifecycle.allows(
            where,
            lifecycle.State(done=brief.done, status=brief.status, executor=brief.executor,
                            report_time=brief.report_time),
        )
    ]


def reap_once(store: Store, expiry: float, at: _dt.datetime | None = None) -> list[str]:
    """Requeue undone tasks whose holder has not reported within `expiry` seconds and forget
    silent executors. Returns the requeued task ids."""
    at = at or _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    before, now = cutoff(at, expiry), model.format_time(at)
    requeued = [
        task_id
        for task_id, holder in choose(store.stale_tasks(before), before)
        if store.requeue(task_id, holder, now, if_idle=True)
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
