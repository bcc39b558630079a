"""The planner: from a job's spec, its persisted state, what its current runs are doing and
how its dependencies stand, the next state and the runs to start. Pure (the clock is an
argument), so every rule is unit-tested without a cluster.

Rules (docs/jobs.md):
- a job starts once every dependency is met: a `daemon` dependency has every replica running,
  a `once`/`cron` one has succeeded (cron: its last tick); a `once` dependency that failed for
  good blocks the job forever;
- `once`: each replica runs until it succeeds; a failed run is retried `retry_attempts` times,
  the k-th retry `retry_backoff * 2**(k-1)` seconds after the failed run ended;
- `daemon`: each replica is started again `interval` seconds after its run ended (whatever
  the outcome; a run whose executor dies is requeued and rerun as the same task). A run that
  ended sooner than `backoff_max` seconds after it was submitted is short: after k short runs
  in a row the replica waits max(interval, min(backoff_max, backoff * 2**(k-1))) instead;
- `cron`: each tick fires once. Ticks missed while no scheduler ran (an outage, a failover):
  the earliest of them fires, late, once; the others are skipped; the schedule goes on with the
  next tick. So the tick at which a leader dies fires exactly once, by it or by the next
  leader. Failed runs of a tick are retried like `once` runs, within that tick;
- a job that depends on itself through others (a cycle) never starts: it is blocked;
- past runs (a daemon's, a retried one's, an earlier tick's or generation's) are kept, the
  `keep_runs` latest of the job; older ones are moved to `prune`, whose tasks the scheduler
  removes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field

from khala.jobs.cron import Cron, CronError, parse
from khala.jobs.deps import describe
from khala.jobs.model import JobSpec, JobState, RunView
from khala.model import Status, parse_time

CATCH_UP_STEPS = 10000  # forward steps looking for the latest missed tick before searching back
MAX_DOUBLINGS = 64  # a back-off doubles at most this often before the cap (floats overflow)


@dataclass(frozen=True)
class Bounds:
    """The scheduler's bounds (judicator settings job_backoff, job_backoff_max,
    job_keep_runs; docs/jobs.md)."""

    backoff: float = 1.0  # the delay after the first short daemon run
    backoff_max: float = 300.0  # the cap; a run that lived this long is not short
    keep_runs: int = 100  # past runs kept per job


@dataclass
class Plan:
    state: JobState
    start: list[int] = field(default_factory=list)  # replicas whose cursor run must exist


def _epoch(text: str) -> float:
    return parse_time(text).replace(tzinfo=_dt.UTC).timestamp() if text else 0.0


def tick_time(tick: int) -> _dt.datetime:
    """The wall-clock minute a tick number stands for (the fast test clock maps seconds onto
    minutes, so its ticks are this too)."""
    return _dt.datetime(1970, 1, 1) + _dt.timedelta(minutes=tick)


def due_ticks(cron: Cron, last: int, now_tick: int) -> tuple[int, int] | None:
    """The earliest and the latest tick in (last, now_tick] that the expression matches, or
    None when there is none."""
    if now_tick <= last:
        return None
    limit = tick_time(now_tick)
    try:
        first = cron.next_after(tick_time(last))
    except CronError:
        return None
    if first > limit:
        return None
    found = first
    for _ in range(CATCH_UP_STEPS):
        following = cron.next_after(found)
        if following > limit:
            return _tick_of(first), _tick_of(found)
        found = following
    latest = cron.latest(limit, now_tick - _tick_of(found))
    return _tick_of(first), _tick_of(latest or found)


def _tick_of(moment: _dt.datetime) -> int:
    return int((moment - _dt.datetime(1970, 1, 1)).total_seconds() // 60)


def dependency_view(spec: JobSpec, state: JobState, runs: dict[int, RunView | None]) -> str:
    """How a job stands as a dependency: met, failed (for good), or waiting."""
    if spec.type == "daemon":
        running = state.started and all(
            r is not None and not r.done and r.status == Status.RUNNING for r in runs.values()
        )
        return "met" if running and runs else "waiting"
    if state.outcome == "succeeded":
        return "met"
    if spec.type == "once" and (state.outcome == "failed" or state.blocked):
        return "failed"
    return "waiting"


def _retry_at(spec: JobSpec, run: RunView, attempt: int) -> float:
    return _epoch(run.report_time) + spec.retry_backoff * (2 ** attempt)


def daemon_delay(interval: float, streak: int, bounds: Bounds) -> float:
    """Seconds from a daemon run's end to the next start after `streak` short runs in a row."""
    if streak <= 0:
        return interval
    doubled = bounds.backoff * 2.0 ** min(streak - 1, MAX_DOUBLINGS)
    return max(interval, min(bounds.backoff_max, doubled))


def _streak(state: JobState, i: int, run: RunView, bounds: Bounds) -> int:
    """Short runs in a row of replica i, this ended one included (0: it was not short)."""
    lived = _epoch(run.report_time) - _epoch(run.add_time)
    if lived >= bounds.backoff_max:
        return 0
    return (state.streak[i] if i < len(state.streak) else 0) + 1


def retire(state: JobState, keys: list[str], keep: int) -> None:
    """Keys of past runs join `kept`; beyond `keep` of them, the oldest move to `prune`."""
    state.kept.extend(k for k in keys if k and k not in state.kept)
    over = len(state.kept) - max(0, keep)
    if over > 0:
        state.prune.extend(state.kept[:over])
        del state.kept[:over]


def _advance(state: JobState, i: int, run: RunView, bounds: Bounds) -> None:
    retire(state, [run.key], bounds.keep_runs)
    state.cursor[i] += 1


def _step_replica(spec: JobSpec, state: JobState, i: int, run: RunView | None,
                  now: float, bounds: Bounds) -> tuple[bool, str]:
    """Advance replica i's cursor when its run is over and the next may start. Returns
    (start its cursor run, the replica's outcome: "" running, "succeeded" or "failed")."""
    if run is None:
        return True, ""
    if not run.done:
        return False, ""
    if spec.type == "daemon":
        streak = _streak(state, i, run, bounds)
        if now >= _epoch(run.report_time) + daemon_delay(spec.interval, streak, bounds):
            state.streak = [*state.streak, *[0] * (i + 1 - len(state.streak))]
            state.streak[i] = streak
            _advance(state, i, run, bounds)
            return True, ""
        return False, ""
    if run.status == Status.SUCCESS:
        return False, "succeeded"
    if state.cursor[i] < spec.retry_attempts:
        if now >= _retry_at(spec, run, state.cursor[i]):
            _advance(state, i, run, bounds)
            return True, ""
        return False, ""
    return False, "failed"


def _copy(state: JobState) -> JobState:
    return dataclasses.replace(state, cursor=list(state.cursor), stopping=list(state.stopping),
                               streak=list(state.streak), kept=list(state.kept),
                               prune=list(state.prune))


def plan(spec: JobSpec, state: JobState, runs: dict[int, RunView | None],
         deps: dict[str, str], now: float, unit: float, bounds: Bounds = Bounds(),
         cycle: list[str] | None = None) -> Plan:
    """The next state and the replicas whose current run must be submitted. `runs` holds the
    task of each replica's cursor key (None: not submitted yet), `deps` each dependency's
    `dependency_view` ("missing" when no such job), `now` epoch seconds, `unit` the seconds
    of a cron minute (60; 1 with the test-only fast clock), `cycle` a dependency cycle this
    job lies on (khala/jobs/deps.py)."""
    state = _copy(state)
    if state.blocked or state.deleted or state.stopping or state.stopped:
        return Plan(state)
    if not state.started:
        if cycle:
            state.blocked = f"dependency cycle: {describe(cycle)}"
            return Plan(state)
        failed = [d for d in spec.deps if deps.get(d) == "failed"]
        if failed:
            state.blocked = f"dependency {failed[0]!r} failed"
            return Plan(state)
        if any(deps.get(d) != "met" for d in spec.deps):
            return Plan(state)
        state.started, state.cursor = True, [0] * spec.replica
        state.streak = [0] * spec.replica
        if spec.type == "cron":
            state.tick = int(now // unit)  # the first tick is the next one
            return Plan(state)
        return Plan(state, start=list(range(spec.replica)))
    if spec.type == "cron" and state.tick is not None:
        return _plan_cron(spec, state, runs, now, unit, bounds)
    return _plan_runs(spec, state, runs, now, bounds)


def _plan_runs(spec: JobSpec, state: JobState, runs: dict[int, RunView | None],
               now: float, bounds: Bounds) -> Plan:
    start, outcomes = [], []
    for i in range(spec.replica):
        go, outcome = _step_replica(spec, state, i, runs.get(i), now, bounds)
        if go:
            start.append(i)
        outcomes.append(outcome)
    if spec.type != "daemon":
        if "failed" in outcomes:
            state.outcome = "failed"
        elif all(o == "succeeded" for o in outcomes):
            state.outcome = "succeeded"
    return Plan(state, start=start)


def _plan_cron(spec: JobSpec, state: JobState, runs: dict[int, RunView | None],
               now: float, unit: float, bounds: Bounds) -> Plan:
    planned = _plan_runs(spec, state, runs, now, bounds) if state.fired else Plan(state)
    due = due_ticks(parse(spec.cron), max(state.tick or 0, state.skipped_to),
                    int(now // unit))
    if due is None:
        return planned
    state = planned.state
    past = [run.key for i, run in runs.items() if run is not None and i not in planned.start]
    retire(state, past, bounds.keep_runs)  # the runs of the tick before
    state.tick, state.skipped_to = due
    state.cursor, state.fired = [0] * spec.replica, True
    return Plan(state, start=list(range(spec.replica)))


def stopped(state: JobState, runs: dict[int, RunView | None], stopping: list[str],
            deadline: float, delete: bool, bounds: Bounds, halted: bool = False) -> JobState:
    """The state of a job being restarted (its next generation starts once `stopping` are
    over), stopped (`halted`: the next generation waits for a restart) or deleted (it goes
    then): its runs become past runs."""
    new = JobState(uid=state.uid, generation=state.generation + 1, created=state.created,
                   kept=list(state.kept), prune=list(state.prune), stopping=stopping,
                   stop_deadline=deadline, deleted=delete, stopped=halted,
                   last_start=state.last_start,
                   last_end=state.last_end)
    retire(new, [run.key for run in runs.values() if run is not None], bounds.keep_runs)
    return new
