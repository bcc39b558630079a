"""Pure parts of jobs and dispatch: the cron parser, the planner, fair_order."""

from __future__ import annotations

import datetime as dt

import pytest

from khala.jobs.cron import CronError, parse
from khala.jobs.model import JobSpec, JobState, RunView, run_key
from khala.jobs.plan import dependency_view, due_ticks, plan
from khala.model import Status, Task, format_time
from khala.rules.dispatch import Candidate, fair_order, head_users

T0 = dt.datetime(2024, 1, 1, 12, 0)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


# ----------------------------------------------------------------------------- cron


def test_cron_fields_and_matching() -> None:
    every = parse("* * * * *")
    assert every.matches(at(0)) and every.matches(at(7))
    quarter = parse("*/15 9-17 * * mon-fri")
    assert quarter.matches(dt.datetime(2024, 1, 2, 9, 45))  # a Tuesday
    assert not quarter.matches(dt.datetime(2024, 1, 2, 9, 46))
    assert not quarter.matches(dt.datetime(2024, 1, 6, 9, 45))  # Saturday
    assert parse("0 0 * * 7").matches(dt.datetime(2024, 1, 7))  # 7 is Sunday
    assert parse("0 0 1 jan,jul *").months == frozenset({1, 7})
    assert parse("5,10-12 * * * *").minutes == frozenset({5, 10, 11, 12})
    # day of month OR day of week when both are restricted (Vixie cron)
    either = parse("0 0 13 * 5")
    assert either.matches(dt.datetime(2024, 1, 13)) and either.matches(dt.datetime(2024, 1, 5))
    assert not either.matches(dt.datetime(2024, 1, 6))


@pytest.mark.parametrize("text", ["", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *",
                                  "* * 0 * *", "*/0 * * * *", "5-1 * * * *", "a * * * *",
                                  "1,,2 * * * *", "* * * 13 *"])
def test_cron_refuses_bad_expressions(text: str) -> None:
    with pytest.raises(CronError):
        parse(text)


def test_cron_next_and_latest() -> None:
    cron = parse("30 2 * * *")
    assert cron.next_after(at(0)) == dt.datetime(2024, 1, 2, 2, 30)
    assert cron.latest(dt.datetime(2024, 1, 2, 3, 0), 60) == dt.datetime(2024, 1, 2, 2, 30)
    assert cron.latest(dt.datetime(2024, 1, 2, 3, 0), 10) is None
    leap = parse("0 0 29 2 *")
    assert leap.next_after(dt.datetime(2024, 3, 1)) == dt.datetime(2028, 2, 29)
    with pytest.raises(CronError):
        parse("0 0 31 2 *").next_after(at(0))


def test_due_ticks_earliest_and_latest() -> None:
    every = parse("* * * * *")
    assert due_ticks(every, 100, 100) is None
    assert due_ticks(every, 100, 101) == (101, 101)
    assert due_ticks(every, 100, 250) == (101, 250)
    fives = parse("*/5 * * * *")
    assert due_ticks(fives, 100, 104) is None
    assert due_ticks(fives, 100, 117) == (105, 115)


# ----------------------------------------------------------------------------- planner


def spec(kind: str, **kw: object) -> JobSpec:
    return JobSpec(name="j", type=kind, template=Task(), **kw)  # type: ignore[arg-type]


def run(status: Status, done: bool, end: float = 0.0) -> RunView:
    end_text = format_time(dt.datetime(1970, 1, 1) + dt.timedelta(seconds=end)) if done else ""
    return RunView("id", "k", status, done, None, "", end_text)


def test_once_starts_every_replica_then_succeeds() -> None:
    s = spec("once", replica=3)
    first = plan(s, JobState(), {}, {}, 1000.0, 60)
    assert first.state.started and first.start == [0, 1, 2]
    assert len({run_key(s, first.state, i) for i in range(3)}) == 3
    done = {i: run(Status.SUCCESS, True, 1001) for i in range(3)}
    after = plan(s, first.state, done, {}, 1002.0, 60)
    assert after.start == [] and after.state.outcome == "succeeded"


def test_once_retries_with_backoff_then_fails() -> None:
    s = spec("once", retry_attempts=1, retry_backoff=2.0)
    state = plan(s, JobState(), {}, {}, 0.0, 60).state
    failed = {0: run(Status.RUN_FAILED, True, 10)}
    assert plan(s, state, failed, {}, 11.0, 60).start == []  # backoff 2 s not over
    retry = plan(s, state, failed, {}, 12.0, 60)
    assert retry.start == [0] and retry.state.cursor == [1]
    assert run_key(s, retry.state, 0) != run_key(s, state, 0)
    final = plan(s, retry.state, failed, {}, 100.0, 60)
    assert final.start == [] and final.state.outcome == "failed"


def test_dependencies_hold_and_block() -> None:
    s = spec("once", deps=["a"])
    assert plan(s, JobState(), {}, {"a": "waiting"}, 0, 60).start == []
    assert plan(s, JobState(), {}, {"a": "missing"}, 0, 60).start == []
    assert plan(s, JobState(), {}, {"a": "met"}, 0, 60).start == [0]
    blocked = plan(s, JobState(), {}, {"a": "failed"}, 0, 60).state
    assert blocked.blocked and plan(s, blocked, {}, {"a": "met"}, 0, 60).start == []


def test_dependency_views() -> None:
    once = spec("once")
    assert dependency_view(once, JobState(outcome="succeeded"), {}) == "met"
    assert dependency_view(once, JobState(outcome="failed"), {}) == "failed"
    daemon = spec("daemon", replica=2)
    started = JobState(started=True, cursor=[0, 0])
    up = {0: run(Status.RUNNING, False), 1: run(Status.RUNNING, False)}
    assert dependency_view(daemon, started, up) == "met"
    assert dependency_view(daemon, started, {**up, 1: run(Status.PENDING, False)}) == "waiting"


def test_daemon_restarts_after_interval() -> None:
    s = spec("daemon", interval=3.0)
    state = plan(s, JobState(), {}, {}, 0.0, 60).state
    assert plan(s, state, {0: run(Status.RUNNING, False)}, {}, 50.0, 60).start == []
    ended = {0: run(Status.RUN_FAILED, True, 10)}
    assert plan(s, state, ended, {}, 12.9, 60).start == []
    again = plan(s, state, ended, {}, 13.0, 60)
    assert again.start == [0] and again.state.cursor == [1]


def test_cron_fires_each_tick_once_and_skips_missed_ones() -> None:
    s = spec("cron", cron="* * * * *", replica=2)
    state = plan(s, JobState(), {}, {}, 100.5, 1).state
    assert state.tick == 100 and not state.fired  # the tick it started in does not fire
    assert plan(s, state, {}, {}, 100.9, 1).start == []
    fired = plan(s, state, {}, {}, 101.1, 1)
    assert fired.start == [0, 1] and fired.state.tick == 101
    busy = {0: run(Status.RUNNING, False), 1: run(Status.RUNNING, False)}
    assert plan(s, fired.state, busy, {}, 101.8, 1).start == []
    late = plan(s, fired.state, busy, {}, 109.2, 1)  # 102..109 missed: 102 fires, late
    assert late.state.tick == 102 and late.start == [0, 1]
    assert run_key(s, late.state, 0) != run_key(s, fired.state, 0)
    assert plan(s, late.state, busy, {}, 109.6, 1).start == []  # 103..109 skipped
    assert plan(s, late.state, busy, {}, 110.1, 1).state.tick == 110  # then on schedule


def test_stopping_job_plans_nothing() -> None:
    s = spec("daemon")
    state = JobState(stopping=["x"])
    assert plan(s, state, {}, {}, 0, 60).start == []


# ----------------------------------------------------------------------------- fair dispatch


def cands(user: int, n: int, priority: int = 0, start: int = 0) -> list[Candidate]:
    return [Candidate(f"{user}-{i:04d}", user, priority, f"t{start + i:06d}") for i in range(n)]


def test_fair_order_serves_the_user_with_fewest_active_first() -> None:
    a, b = cands(1, 200), cands(2, 5, start=1000)
    order = fair_order(a + b, {1: 2})
    assert [c.user for c in order[:10]] == [2, 2, 1, 2, 1, 2, 1, 2, 1, 1]
    assert [c.id for c in order if c.user == 1] == [c.id for c in a]  # own order kept


def test_fair_order_priority_first() -> None:
    order = fair_order(cands(1, 3) + cands(2, 2, priority=5, start=500), {})
    assert [c.user for c in order] == [2, 2, 1, 1, 1]


def test_head_users_stops_at_enough_idle_users() -> None:
    # queue order: 5 5 5 7 9 8; user 7 holds a task
    queue = [5, 5, 5, 7, 9, 8]
    assert head_users(queue, {7}, 1, complete=False) == [5]
    assert head_users(queue, {7}, 2, complete=False) == [5, 9]
    assert head_users(queue, {7}, 3, complete=False) == [5, 9, 8]


def test_head_users_needs_the_whole_queue_when_short_of_idle_users() -> None:
    queue = [5, 5, 7, 5]
    assert head_users(queue, {7}, 3, complete=False) is None  # more may wait further back
    assert head_users(queue, {7}, 3, complete=True) == [5, 7]  # all of them, busy ones too
    assert head_users([], set(), 1, complete=True) == []


def test_head_users_agrees_with_fair_order_over_the_whole_queue() -> None:
    import random

    rng = random.Random(11)
    for _ in range(300):
        queue = [Candidate(f"{i:04d}", rng.choice([1, 2, 3, 4, 5, 6]), 0, f"t{i:06d}")
                 for i in range(rng.randint(0, 40))]
        active = {u: rng.randint(1, 3) for u in rng.sample([1, 2, 3, 4, 5, 6], 2)}
        want = rng.randint(1, 6)
        cut = rng.randint(0, len(queue))  # the part of the queue that was read
        users = head_users([c.user for c in queue[:cut]], active, want, cut == len(queue))
        if users is None:
            continue
        picked = [c for c in queue if c.user in users]
        assert fair_order(picked, active)[:want] == fair_order(queue, active)[:want]


def test_a_stopped_job_plans_nothing_until_a_new_state() -> None:
    from khala.jobs.model import state_from_dict, state_to_dict

    s = spec("daemon")
    stopped = JobState(started=True, cursor=[0], stopped=True)
    assert plan(s, stopped, {0: None}, {}, 0, 60).start == []
    doc = state_to_dict(stopped)
    assert doc["stopped"] is True and state_from_dict(doc, 4).stopped
    running = state_to_dict(JobState())
    assert "stopped" not in running  # as older judicators wrote it: they read it as before
    # a field of a newer version is skipped, not an error
    assert state_from_dict({**running, "newer": 1}, 1) == JobState(**{
        **{k: v for k, v in running.items()}, "version": 1})
