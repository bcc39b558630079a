"""The reaper's choice (pure) and one pass over a real SQLite store, without servers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from khala.judicator.reaper import choose, cutoff, reap_once
from khala.model import Execute, Result, Status, Task, TaskBrief, format_time, new_id
from khala.store import open_store

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)


def at(seconds: float) -> str:
    return format_time(T0 + dt.timedelta(seconds=seconds))


def brief(executor: str | None, report: float, done: bool = False,
          status: Status = Status.RUNNING) -> TaskBrief:
    return TaskBrief(id=new_id(), done=done, status=status, executor=executor,
                     report_time=at(report))


def test_cutoff_is_expiry_before_now_in_the_stores_time_format() -> None:
    assert cutoff(T0, 2.5) == at(-2.5)
    assert cutoff(T0, 2.5) == "2024-05-01T11:59:57.500000"
    assert cutoff(T0, 0) == at(0)


def test_choice_is_undone_held_tasks_silent_strictly_before_the_cutoff() -> None:
    silent = brief("a", 1)
    compiling = brief("b", 2, status=Status.COMPILING)
    briefs = [
        silent,
        brief("a", 10),  # reported exactly at the cutoff: not silent yet
        brief("a", 11),  # reported after it
        brief(None, 1, status=Status.RETRYING),  # nobody holds it
        brief("a", 1, done=True, status=Status.SUCCESS),  # done never changes
        compiling,
    ]
    assert choose(briefs, at(10)) == [(silent.id, "a"), (compiling.id, "b")]


def test_choice_keeps_the_stores_order_and_is_empty_for_nothing() -> None:
    briefs = [brief(f"ex{i}", i) for i in range(5)]
    assert [pair[0] for pair in choose(briefs, at(100))] == [b.id for b in briefs]
    assert choose([], at(100)) == []
    assert choose(briefs, at(0)) == []


def test_choice_leaves_the_tasks_of_live_executors_however_old_their_report() -> None:
    """A live executor (one that reported since the cutoff) keeps its tasks even when nothing
    was written about them lately: its report may have stalled on another task's lock."""
    mine, theirs = brief("alive", 1), brief("silent", 1)
    assert choose([mine, theirs], at(10), live={"alive"}) == [(theirs.id, "silent")]
    assert choose([mine, theirs], at(10), live={"alive", "silent"}) == []


def test_a_pass_requeues_silent_holders_tasks_and_forgets_silent_executors(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/khala.db")
    tasks = [Task(id=new_id(), execute=Execute(command="true"), add_time=at(i)) for i in range(3)]
    for task in tasks:
        store.add(task)
    store.touch_executor("silent", at(0))
    store.touch_executor("alive", at(0))
    store.assign("silent", 2, at(0))
    store.assign("alive", 1, at(0))
    store.finish(tasks[1].id, "silent", Status.SUCCESS, Result(), at(1))  # done: stays done
    store.touch_executor("alive", at(25))  # its task's own report time stays at 0

    assert reap_once(store, expiry=10, at=T0 + dt.timedelta(seconds=30)) == [tasks[0].id]
    requeued = store.get(tasks[0].id)
    assert requeued is not None
    assert (requeued.executor, requeued.status, requeued.report_time) == (
        None, Status.RETRYING, at(30))
    assert [e.hostname for e in store.executors(at(-100))] == ["alive"]
    got = store.get(tasks[1].id)
    assert got is not None and (got.done, got.status) == (True, Status.SUCCESS)
    assert reap_once(store, expiry=10, at=T0 + dt.timedelta(seconds=31)) == []  # nothing left
