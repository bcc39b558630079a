"""A report that finds one task locked must not get the executor's other tasks run twice.

On FerretDB every task write takes a lock (khala/store/mongo/ferret_locks.py). A judicator killed
while writing task X leaves X's lock behind until its store's heartbeat goes stale. A report
used to wait for it and then fail whole, writing nothing: after the expiry the new leader's
reaper found the executor's *other* task Y silent and requeued it, and Y ran twice
(tests/cluster/test_failover.py::test_leader_sigkill_under_load, rarely). Now the report writes
the executor's record first, waits for X at most the store's lock wait (well inside the
expiry), leaves X's result with the executor (not named in `cancel`) and writes the rest; the
reaper requeues only tasks of silent executors. Here the same state is built on the real
FerretDB server and the judicator's service.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from khala import model
from khala.config import JudicatorSettings
from khala.discovery.static import LocalBus
from khala.errors import Unavailable
from khala.judicator.notifier import Notifier
from khala.judicator.reaper import reap_once
from khala.judicator.service import JudicatorService
from khala.model import Execute, Result, Status, Task, TaskBrief
from khala.store import open_store
from khala.store.mongo.ferret import FerretStore

EXPIRY = 10.0  # seconds: the reaper's silence bound, as the judicator's --expiry


@pytest.fixture
def store(mongo_url: str) -> Iterator[FerretStore]:
    opened = open_store(mongo_url)
    assert isinstance(opened, FerretStore)
    yield opened
    opened.close()


def ago(seconds: float) -> str:
    return model.format_time(
        dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds))


def later(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=seconds)


def service_on(store: FerretStore) -> JudicatorService:
    """The judicator's service on `store`."""
    settings = JudicatorSettings(expiry=EXPIRY, store="mongodb://unused")
    return JudicatorService(store, settings, Notifier(), LocalBus())


def zombie_lock(store: FerretStore, task_id: str) -> None:
    """The lock of a judicator whose heartbeat has not gone stale yet (it just died, or it
    hangs): its lock stands."""
    store._writers._beats.insert_one({"_id": "zombie", "at": store._clock.now()})
    store._claims.insert_one({"_id": task_id, "writer": "zombie", "at": store._clock.now(),
                              "token": "left"})


def held_pair(store: FerretStore) -> tuple[Task, Task]:
    """Two tasks held by executor "ex" since 2 × EXPIRY ago: both look silent by their own
    report times."""
    tasks = [Task(id=model.new_id(), execute=Execute(command="true"), add_time=ago(30 + i))
             for i in range(2)]
    for task in tasks:
        store.add(task)
    assert len(store.assign("ex", 2, ago(2 * EXPIRY))) == 2
    return tasks[0], tasks[1]


def test_a_report_leaves_a_locked_task_for_later_and_keeps_its_executor_alive(
    store: FerretStore,
) -> None:
    x, y = held_pair(store)
    zombie_lock(store, x.id)
    service = service_on(store)
    done = Task(id=x.id, status=Status.SUCCESS, result=Result())
    running = TaskBrief(id=y.id, done=False, status=Status.RUNNING, executor="ex",
                        report_time="")

    started = time.monotonic()
    answer = service.report("ex", [done], [running], vacant=0)
    assert time.monotonic() - started < EXPIRY / 2  # waited at most the lock wait for X
    assert x.id not in answer.cancel  # its result stays with the executor, sent again later
    got = store.get(y.id)  # the rest of the report was written: Y's progress
    assert got is not None and (got.executor, got.status) == ("ex", Status.RUNNING)
    got = store.get(x.id)
    assert got is not None and not got.done and got.executor == "ex"

    assert [e.hostname for e in store.executors(ago(EXPIRY))] == ["ex"]  # it lives
    assert reap_once(store, EXPIRY, at=later(EXPIRY / 2)) == []  # so X and Y stay its own

    store._claims.delete_one({"_id": x.id})  # the zombie's lock is cleared
    assert service.report("ex", [done], [running], vacant=0).cancel == [x.id]
    got = store.get(x.id)
    assert got is not None and (got.done, got.status) == (True, Status.SUCCESS)
    # The executor then falls silent: past the expiry its task goes back to the queue.
    assert reap_once(store, EXPIRY, at=later(2 * EXPIRY)) == [y.id]
    got = store.get(y.id)
    assert got is not None and (got.executor, got.status) == (None, Status.RETRYING)


def test_a_hand_in_that_finds_its_task_locked_is_refused_so_the_result_stays(
    store: FerretStore,
) -> None:
    """`hand_in` answers OK only when every result was written or dropped as late: with one
    task locked it raises Unavailable (ERROR on the wire), and the executor keeps its results
    for its next report; the others were written and are then dropped as late."""
    x, y = held_pair(store)
    zombie_lock(store, x.id)
    service = service_on(store)
    results = [Task(id=t.id, status=Status.SUCCESS, result=Result()) for t in (x, y)]
    with pytest.raises(Unavailable, match=rf"results of \['{x.id}'\] not written yet"):
        service.hand_in("ex", results)
    got = store.get(y.id)
    assert got is not None and got.done  # written all the same
    store._claims.delete_one({"_id": x.id})
    assert sorted(service.report("ex", results, [], vacant=0).cancel) == sorted([x.id, y.id])
    assert all(t is not None and t.done for t in (store.get(x.id), store.get(y.id)))
