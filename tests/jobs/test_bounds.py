"""Pure bounds of jobs: the reserved namespace of run keys, daemon back-off, kept runs, and
dependency cycles (khala/jobs/model.py, plan.py, deps.py)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from khala.jobs.deps import MAX_SHOWN, cycle_through, cycles, describe
from khala.jobs.model import (
    JobSpec,
    JobState,
    RunView,
    is_run_key,
    run_key,
    state_from_dict,
    state_to_dict,
)
from khala.jobs.plan import Bounds, daemon_delay, plan, retire, stopped
from khala.model import Status, Task, format_time, valid_key

B = Bounds(backoff=1.0, backoff_max=60.0, keep_runs=3)


def spec(kind: str, **kw: object) -> JobSpec:
    return JobSpec(name="j", type=kind, template=Task(), **kw)  # type: ignore[arg-type]


def at(seconds: float) -> str:
    return format_time(dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds))


def ended(key: str, start: float, end: float, status: Status = Status.SUCCESS) -> RunView:
    return RunView("id-" + key, key, status, True, None, at(start), at(end))


# ----------------------------------------------------------------------------- run keys


def test_every_run_key_is_in_the_reserved_namespace() -> None:
    rng = random.Random(3)
    for kind in ("once", "daemon", "cron"):
        for name in ("a", "x" * 32, "nightly_backup-2", "0"):
            s = JobSpec(name=name, type=kind, template=Task(), replica=100)
            for _ in range(50):
                state = JobState(generation=rng.randrange(10**6), started=True,
                                 cursor=[rng.randrange(10**6) for _ in range(100)],
                                 tick=rng.randrange(10**9), fired=True)
                key = run_key(s, state, rng.randrange(100))
                assert valid_key(key) and is_run_key(key), key


@pytest.mark.parametrize("key", ["my.build.1", "abc", "nightly.3fa9c.0.0.0",
                                 "nightly.3FA9C1.0.0.0", "nightly.3fa9c1", ".3fa9c1.0",
                                 "a b.3fa9c1.0", "x" * 33 + ".3fa9c1.0",
                                 "0123456789abcdef01234567"])
def test_other_client_ids_stay_free(key: str) -> None:
    assert not is_run_key(key)


@pytest.mark.parametrize("key", ["nightly.3fa9c1.0.1.tsb4k2o.0", "a.000000.", "x-y_z.abcdef.q"])
def test_run_shaped_ids_are_reserved(key: str) -> None:
    assert is_run_key(key)


def test_states_stored_by_other_versions_still_read() -> None:
    doc = state_to_dict(JobState(kept=["k"]))
    assert state_from_dict({**doc, "added_later": 1}, 4).kept == ["k"]
    old = {k: v for k, v in doc.items() if k not in ("streak", "kept", "prune")}
    assert state_from_dict(old, 2) == JobState(uid=doc["uid"], version=2)


# ----------------------------------------------------------------------------- back-off


def test_back_off_doubles_up_to_the_cap() -> None:
    assert [daemon_delay(0, k, B) for k in range(9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert daemon_delay(3, 1, B) == 3 and daemon_delay(3, 3, B) == 4  # never below interval
    assert daemon_delay(100, 5, B) == 100  # an interval above the cap stands
    assert daemon_delay(0, 10**9, B) == 60  # no overflow


def test_a_daemon_that_keeps_exiting_waits_longer_each_time() -> None:
    s = spec("daemon", interval=0.0)
    state = plan(s, JobState(), {}, {}, 0.0, 60, B).state
    end, starts = 0.0, []
    for k in range(1, 8):
        run = ended(run_key(s, state, 0), end, end + 0.1)  # exits at once
        delay = min(60.0, 2.0 ** (k - 1))
        assert plan(s, state, {0: run}, {}, end + 0.1 + delay - 0.01, 60, B).start == []
        nxt = plan(s, state, {0: run}, {}, end + 0.1 + delay, 60, B)
        assert nxt.start == [0] and nxt.state.streak == [k]
        state, end = nxt.state, end + 0.1 + delay
        starts.append(end)
    assert starts[-1] - starts[-2] == pytest.approx(0.1 + 60.0)  # capped (2**6 > 60)


def test_a_run_that_lived_long_resets_the_back_off() -> None:
    s = spec("daemon", interval=2.0)
    state = plan(s, JobState(), {}, {}, 0.0, 60, B).state
    state.streak = [6]
    long_run = ended(run_key(s, state, 0), 0.0, 60.0)  # lived backoff_max
    again = plan(s, state, {0: long_run}, {}, 62.0, 60, B)
    assert again.start == [0] and again.state.streak == [0]
    short = ended(run_key(s, state, 0), 0.0, 59.9)
    assert plan(s, state, {0: short}, {}, 59.9 + 59, 60, B).start == []  # 2**6 capped: 60


def test_states_without_a_streak_back_off_from_the_start() -> None:
    s = spec("daemon", interval=0.0, replica=2)
    state = JobState(started=True, cursor=[4, 4])  # stored before back-off existed
    runs = {1: ended(run_key(s, state, 1), 0, 1), 0: None}
    out = plan(s, state, runs, {}, 2.0, 60, B)
    assert out.start == [0, 1] and out.state.streak == [0, 1]


# ----------------------------------------------------------------------------- kept runs


def test_retire_keeps_the_latest_and_prunes_the_rest() -> None:
    state = JobState()
    retire(state, ["a", "b"], 3)
    retire(state, ["c", "b"], 3)
    assert state.kept == ["a", "b", "c"] and state.prune == []
    retire(state, ["d", "e"], 3)
    assert state.kept == ["c", "d", "e"] and state.prune == ["a", "b"]
    zero = JobState()
    retire(zero, ["x"], 0)
    assert zero.kept == [] and zero.prune == ["x"]


def test_retries_daemons_ticks_and_generations_retire_their_runs() -> None:
    once = spec("once", retry_attempts=10, retry_backoff=0.0)
    state = plan(once, JobState(), {}, {}, 0.0, 60, B).state
    keys = []
    for _ in range(5):
        key = run_key(once, state, 0)
        keys.append(key)
        state = plan(once, state, {0: ended(key, 0, 1, Status.RUN_FAILED)}, {}, 2.0, 60, B).state
    assert state.kept == keys[2:] and state.prune == keys[:2]

    cron = spec("cron", replica=2)
    state = plan(cron, JobState(), {}, {}, 100.5, 1, B).state
    state = plan(cron, state, {}, {}, 101.1, 1, B).state
    fired = [run_key(cron, state, i) for i in range(2)]
    busy = {i: RunView(f"t{i}", fired[i], Status.RUNNING, False, "e", at(101), "")
            for i in range(2)}
    nxt = plan(cron, state, busy, {}, 102.1, 1, B).state
    assert nxt.kept == fired and nxt.tick == 102

    daemon = spec("daemon", replica=2)
    state = plan(daemon, JobState(kept=["old"]), {}, {}, 0.0, 60, B).state
    live = {0: ended(run_key(daemon, state, 0), 0, 5), 1: None}
    new = stopped(state, live, ["id-x"], 9.0, False, B)
    assert new.generation == 1 and new.kept == ["old", run_key(daemon, state, 0)]
    assert new.stopping == ["id-x"] and not new.started


# ----------------------------------------------------------------------------- cycles


def test_cycle_through_names_the_shortest_cycle() -> None:
    graph = {"a": ["b"], "b": ["c", "a"], "c": ["a"], "d": ["a"]}
    assert cycle_through("a", graph) == ["a", "b", "a"]
    assert cycle_through("c", graph) == ["c", "a", "b", "c"]
    assert cycle_through("d", graph) is None  # depends on a cycle, but lies on none
    assert cycle_through("s", {"s": ["s"]}) == ["s", "s"]
    assert cycle_through("x", {"x": ["missing"]}) is None
    assert cycle_through("new", {"p": ["new"], "new": ["q", "p"]}) == ["new", "p", "new"]


def test_cycles_finds_every_job_on_one() -> None:
    graph = {"a": ["b"], "b": ["a"], "c": ["c"], "d": ["a", "e"], "e": [], "f": ["g"],
             "g": ["h"], "h": ["f", "nowhere"]}
    found = cycles(graph)
    assert set(found) == {"a", "b", "c", "f", "g", "h"}
    assert found["g"] == ["g", "h", "f", "g"] and found["c"] == ["c", "c"]


def test_cycles_agree_with_a_search_from_each_job() -> None:
    rng = random.Random(11)
    for _ in range(300):
        names = [f"n{i}" for i in range(rng.randrange(1, 12))]
        graph = {n: rng.sample(names + ["ghost"], rng.randrange(0, 3)) for n in names}
        wanted = set(rng.sample(names, rng.randrange(0, len(names) + 1)))
        found = cycles(graph, wanted)
        for n in names:
            alone = cycle_through(n, graph)
            assert (n in found) == (alone is not None and n in wanted), (graph, n)
            if n in found:  # a real cycle through n: every step is a dependency
                cycle = found[n]
                assert cycle[0] == cycle[-1] == n and len(cycle) >= len(alone or [])
                assert all(b in graph[a] for a, b in zip(cycle, cycle[1:], strict=False))


def test_long_cycles_are_found_in_linear_time_and_shown_shortened() -> None:
    chain = {f"j{i}": [f"j{i + 1}"] for i in range(20000)}
    assert cycles(chain) == {}
    chain["j20000"] = ["j0"]
    found = cycles(chain)  # one search, not one per job (that took minutes)
    assert len(found) == 20001
    assert found["j5"][:3] == ["j5", "j6", "j7"] and found["j5"][-2:] == ["…", "j5"]
    assert len(found["j5"]) == MAX_SHOWN + 2
    assert describe(cycle_through("j0", chain) or []).endswith("j11 → … → j0")


def test_a_job_on_a_cycle_is_blocked_before_it_starts() -> None:
    s = spec("once", deps=["b"])
    out = plan(s, JobState(), {}, {"b": "waiting"}, 0.0, 60, B, ["j", "b", "j"])
    assert out.state.blocked == "dependency cycle: j → b → j" and out.start == []
    started = JobState(started=True, cursor=[0])
    assert not plan(s, started, {0: None}, {}, 0.0, 60, B, ["j", "b", "j"]).state.blocked
