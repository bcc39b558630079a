"""The report rules and the long-poll notifier, without servers."""

from __future__ import annotations

import threading
import time

from khala.judicator.notifier import Notifier
from khala.judicator.rules import (
    Touches,
    final_status,
    needs_progress,
    plan_report,
    progress_status,
)
from khala.model import Language, Status, Task, TaskBrief


def test_complete_tasks_always_come_back_held_or_not() -> None:
    plan = plan_report({"a"}, [Task(id="a", status=5), Task(id="x", status=5)], [])
    assert plan.cancel == ["a", "x"]
    assert plan.lost == []


def test_executing_not_held_is_cancelled_held_is_progress() -> None:
    plan = plan_report({"a", "b"}, [], [TaskBrief(id="a", status=3), TaskBrief(id="z")])
    assert [b.id for b in plan.progress] == ["a"]
    assert plan.cancel == ["z"]
    assert plan.lost == ["b"]


def test_duplicates_are_counted_once() -> None:
    plan = plan_report({"a"}, [Task(id="a", status=5), Task(id="a", status=4)], [TaskBrief(id="a")])
    assert plan.cancel == ["a"] and plan.progress == [] and plan.lost == []


def test_everything_held_but_unmentioned_is_lost() -> None:
    assert plan_report({"c", "a", "b"}, [], []).lost == ["a", "b", "c"]


def test_status_normalisation() -> None:
    for status in (Status.COMPILE_FAILED, Status.RUN_FAILED, Status.SUCCESS, Status.UNKNOWN_ERROR):
        assert final_status(status) == status
    for bogus in (Status.PENDING, Status.RUNNING, Status.CANCELLED, Status.RETRYING, 99, -1):
        assert final_status(bogus) == Status.UNKNOWN_ERROR
    assert progress_status(Status.RUNNING) == Status.RUNNING
    assert progress_status(Status.COMPILING) == Status.COMPILING
    assert progress_status(Status.SUCCESS) == Status.COMPILING


def test_notifier_wake_event_timeout() -> None:
    n = Notifier()
    gen = n.generation()
    assert n.wait("e", gen, 0.01) == "timeout"
    n.wake("e")
    assert n.wait("e", gen, 1) == "wake"
    assert n.wait("e", gen, 0.01) == "timeout"  # the wake was consumed
    assert n.wait("other", gen, 0.01) == "timeout"
    n.notify()
    assert n.wait("e", gen, 1) == "event"


def test_notifier_wakes_a_blocked_waiter_promptly() -> None:
    n = Notifier()
    gen = n.generation()
    seen: list[tuple[str, float]] = []

    def waiter() -> None:
        start = time.monotonic()
        seen.append((n.wait("e", gen, 5), time.monotonic() - start))

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.05)
    n.notify()
    thread.join(5)
    assert seen and seen[0][0] == "event" and seen[0][1] < 1.0


def test_progress_is_written_when_the_status_changes_or_the_report_time_ages() -> None:
    stored = TaskBrief(id="t", status=Status.COMPILING, report_time="2026-01-01T00:00:10.000000")
    fresh_since = "2026-01-01T00:00:05.000000"
    assert not needs_progress(stored, Status.COMPILING, fresh_since)  # nothing new
    assert needs_progress(stored, Status.RUNNING, fresh_since)  # a new status
    assert needs_progress(stored, Status.COMPILING, "2026-01-01T00:00:11.000000")  # aging


def test_touches_write_a_new_changed_or_aging_executor_record() -> None:
    touches = Touches()
    py = [Language("python", "3")]
    assert touches.due("e", py, 60)  # new
    assert not touches.due("e", py, 60)  # written just now, same languages
    assert touches.due("e", [], 60)  # languages changed
    assert touches.due("f", [], 60)  # another executor
    assert touches.due("e", [], 0)  # aging (every 0 s: always)
    touches.forget("e")  # it left: its next report writes the record again
    assert touches.due("e", [], 60)
