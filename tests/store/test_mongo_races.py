"""Racing writes to one task (or job) from two judicators on the real FerretDB.

FerretDB v1 runs a conditional update as a read followed by a whole-document write by `_id`;
without the FerretDB store's per-document lock (khala/store/mongo/ferret_locks.py) two racing
transitions can both match and the later write reverts the earlier one: a cancelled task
resurrected by a progress write, a finish and a cancel both acknowledged. Each case below lines
the two writes of every task up behind a barrier, on two stores (two judicators) of one
database, opened as a judicator opens them (`open_store`: the server says it is FerretDB).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from khala.model import Result, Status, StepReport, Task
from khala.store import open_store
from khala.store.mongo.ferret import FerretStore
from khala.store.mongo.ferret_claims import CLAIM_MIN_AGE, WRITER_STALE_SECONDS
from tests.store.test_contract import add_tasks, at

TASKS = 40  # tasks raced per case; the unlocked code loses several of them every run
JOIN_SECONDS = 120  # bound on one race (a write waits for a held lock at most a few seconds)

Op = Callable[[FerretStore, Any], Any]  # a write of one item (task, job name, …)


def race(stores: tuple[FerretStore, FerretStore], items: list[Any], first: Op, second: Op
         ) -> list[tuple[bool, bool]]:
    """Run `first` on stores[0] and `second` on stores[1] for each item at the same moment;
    their answers per item."""
    answers: dict[int, list[bool]] = {0: [], 1: []}
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(side: int, op: Op) -> None:
        try:
            for item in items:
                start.wait(10)
                answers[side].append(op(stores[side], item))
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=run, args=(0, first)),
               threading.Thread(target=run, args=(1, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    assert not any(t.is_alive() for t in threads), "a racing write did not return"
    assert not errors, errors
    return [(a, b) for a, b in zip(answers[0], answers[1], strict=True)]


def held_tasks(store: FerretStore) -> list[Task]:
    tasks = add_tasks(store, TASKS)
    assert len(store.assign("ex", TASKS, at(1))) == TASKS
    return tasks


def progress(store: FerretStore, task: Task) -> bool:
    return store.progress(task.id, "ex", Status.RUNNING, at(2))


def cancel(store: FerretStore, task: Task) -> bool:
    return store.cancel(task.id, at(2))


def finish(store: FerretStore, task: Task) -> bool:
    result = Result(execute_report=StepReport(exit_code=0, time=0.005))
    return store.finish(task.id, "ex", Status.SUCCESS, result, at(2))


def requeue(store: FerretStore, task: Task) -> bool:
    return store.requeue(task.id, "ex", at(2))


def test_a_cancel_racing_progress_writes_stays(stores: tuple[FerretStore, FerretStore]) -> None:
    tasks = held_tasks(stores[0])
    answers = race(stores, tasks, progress, cancel)
    assert all(cancelled for _, cancelled in answers), "a cancel of an undone task was refused"
    resurrected = []
    for task in tasks:
        stored = stores[0].get(task.id)
        assert stored is not None
        if not (stored.done and stored.status == Status.CANCELLED and stored.executor == "ex"):
            resurrected.append((task.id, stored.done, stored.status.name))
    assert not resurrected, f"{len(resurrected)} of {TASKS} cancels lost: {resurrected[:3]}"
    assert not any(progress(stores[0], t) for t in tasks)  # progress of a cancelled task: no


@pytest.mark.parametrize("rival", [cancel, requeue], ids=["cancel", "requeue"])
def test_exactly_one_of_finish_and_a_rival_wins(
    stores: tuple[FerretStore, FerretStore], rival: Op
) -> None:
    """finish and cancel (or requeue) start from the same state and each leaves it: exactly
    one may be acknowledged, and the stored task is what the acknowledged one made it."""
    tasks = held_tasks(stores[0])
    answers = race(stores, tasks, finish, rival)
    both = [t.id for t, (a, b) in zip(tasks, answers, strict=True) if a and b]
    neither = [t.id for t, (a, b) in zip(tasks, answers, strict=True) if not (a or b)]
    assert not both, f"{len(both)} of {TASKS} tasks: both writes acknowledged, one lost"
    assert not neither, f"{len(neither)} of {TASKS} tasks: neither write acknowledged"
    for task, (finished, _) in zip(tasks, answers, strict=True):
        stored = stores[1].get(task.id)
        assert stored is not None
        if finished:
            assert (stored.done, stored.status, stored.executor) == (True, Status.SUCCESS, "ex")
            assert stored.result is not None and stored.result.execute_report is not None
        elif rival is cancel:
            # the executor that held it is kept (its stopped run's output may follow: KEEP)
            assert (stored.done, stored.status, stored.executor) == (True, Status.CANCELLED, "ex")
        else:
            assert (stored.done, stored.status, stored.executor) == (False, Status.RETRYING, None)


def test_racing_job_saves_of_one_version_let_one_win(
    stores: tuple[FerretStore, FerretStore],
) -> None:
    names = [f"job-{i}" for i in range(TASKS)]
    for name in names:
        assert stores[0].create_job(name, {"name": name}, {"run": 0})

    def save(side: int) -> Op:
        return lambda store, name: store.save_job(name, 0, {"run": side})

    answers = race(stores, names, save(1), save(2))
    assert all(a != b for a, b in answers), "two saves of one version both acknowledged"
    for name, (first, _) in zip(names, answers, strict=True):
        stored = stores[0].job(name)
        assert stored is not None and stored.version == 1
        assert stored.state == {"run": 1 if first else 2}


# ----------------------------------------------------------------------------- orphaned locks


def lock_of(store: FerretStore, task_id: str, writer: str, age: float) -> None:
    """A task lock as a writer leaves it when it dies holding it (server clock)."""
    store._claims.insert_one({"_id": task_id, "writer": writer, "at": store._clock.now() - age,
                              "token": "t"})


def beat(store: FerretStore, writer: str, age: float) -> None:
    """The last heartbeat of `writer`, `age` seconds ago (server clock)."""
    store._writers._beats.insert_one({"_id": writer, "at": store._clock.now() - age})


def test_a_lock_of_a_dead_judicator_is_cleared_at_once(
    stores: tuple[FerretStore, FerretStore],
) -> None:
    store = stores[0]
    beat(store, "gone", WRITER_STALE_SECONDS + 1)
    tasks = held_tasks(store)
    old, fresh = tasks[0], tasks[1]
    lock_of(store, old.id, "gone", age=2 * CLAIM_MIN_AGE)
    started = time.monotonic()
    assert store.finish(old.id, "ex", Status.SUCCESS, Result(), at(2))
    assert time.monotonic() - started < CLAIM_MIN_AGE  # no waiting: cleared on first sight
    lock_of(store, fresh.id, "gone", age=0)  # just taken: cleared once CLAIM_MIN_AGE old
    started = time.monotonic()
    assert store.cancel(fresh.id, at(2))
    assert CLAIM_MIN_AGE * 0.9 <= time.monotonic() - started < CLAIM_MIN_AGE + 2
    assert store._claims.count_documents({}) == 0  # no lock and no clearing marker left


def test_a_lock_of_a_live_judicator_makes_writes_wait(
    stores: tuple[FerretStore, FerretStore],
) -> None:
    store, other = stores  # other: a live judicator, beating
    (task, *_) = held_tasks(store)
    lock_of(store, task.id, other._writers.me, age=2 * CLAIM_MIN_AGE)
    answer: list[Any] = []
    writer = threading.Thread(target=lambda: answer.append(cancel(store, task)))
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and not answer  # waiting for the live judicator's lock
    assert store.assign("ex2", 1, at(3)) == []  # (not queued anyway)
    store._claims.delete_one({"_id": task.id})  # that judicator is done with it
    writer.join(10)
    assert answer == [True]
    assert store.get(task.id).status == Status.CANCELLED  # type: ignore[union-attr]


def test_a_lock_this_judicator_failed_to_release_is_cleared_at_once(
    stores: tuple[FerretStore, FerretStore],
) -> None:
    """A release lost to a connection failure leaves a lock of this very writer behind; no
    thread of it holds that token, so it is cleared without waiting for staleness."""
    store = stores[0]
    (task, *_) = held_tasks(store)
    store._claims.insert_one({"_id": task.id, "writer": store._writers.me,
                              "at": store._clock.now(), "token": "lost"})
    started = time.monotonic()
    assert store.progress(task.id, "ex", Status.RUNNING, at(2))
    assert time.monotonic() - started < CLAIM_MIN_AGE
    assert store._claims.count_documents({}) == 0


def test_a_closed_judicator_stops_beating_and_its_heartbeat_goes(mongo_url: str) -> None:
    one, two = open_store(mongo_url), open_store(mongo_url)
    assert isinstance(one, FerretStore) and isinstance(two, FerretStore)
    try:
        assert one._writers.is_live(two._writers.me) and two._writers.is_live(one._writers.me)
        two.close()
        assert not one._writers.is_live(two._writers.me)
    finally:
        one.close()
