"""A report that finds one task locked must not get the executor's other tasks run twice.

On FerretDB every task write takes a lock (khala/store/mongo_locks.py). A judicator killed while
writing task X leaves X's lock behind until etcd drops that judicator (its lease's TTL). A report
used to wait for it (5 s) and then fail whole, writing nothing: after the expiry the new
leader's reaper found the executor's *other* task Y silent and requeued it, and Y ran twice
(tests/cluster/test_failover.py::test_leader_sigkill_under_load, rarely). Now the report writes
the executor's record first, waits for X at most a quarter of the expiry, leaves X's result
with the executor (not named in `cancel`) and writes the rest; the reaper requeues only tasks
of silent executors. Here the same state is built on the real FerretDB server and the
judicator's service.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from khala import model
from khala.config import JudicatorSettings
from khala.discovery.static import StandaloneRegistration
from khala.errors import Locked
from khala.judicator.notifier import Notifier
from khala.judicator.reaper import reap_once
from khala.judicator.rules import REFRESH_SHARE
from khala.judicator.service import JudicatorService
from khala.model import Execute, Result, Status, Task, TaskBrief
from khala.store.mongodb import MongoStore

EXPIRY = 10.0  # seconds: the reaper's silence bound, as the judicator's --expiry


@pytest.fixture
def store(mongo_url: str) -> Iterator[MongoStore]:
    opened = MongoStore.from_url(mongo_url)
    yield opened
    opened.close()


def ago(seconds: float) -> str:
    return model.format_time(
        dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds))


def later(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=seconds)


def service_on(store: MongoStore) -> JudicatorService:
    """The judicator's service on `store`; "zombie" is a judicator etcd still lists (its lease
    has not run out), so its locks stand."""
    settings = JudicatorSettings(expiry=EXPIRY, store="mongodb://unused")
    store.set_claimer("me", {"zombie": True}.get, settings.expiry * REFRESH_SHARE)  # as server.py
    return JudicatorService(store, settings, Notifier(), StandaloneRegistration())


def held_pair(store: MongoStore) -> tuple[Task, Task]:
    """Two tasks held by executor "ex" since 2 × EXPIRY ago: both look silent by their own
    report times."""
    tasks = [Task(id=model.new_id(), execute=Execute(command="true"), add_time=ago(30 + i))
             for i in range(2)]
    for task in tasks:
        store.add(task)
    assert len(store.assign("ex", 2, ago(2 * EXPIRY))) == 2
    return tasks[0], tasks[1]


def test_a_report_leaves_a_locked_task_for_later_and_keeps_its_executor_alive(
    store: MongoStore,
) -> None:
    x, y = held_pair(store)
    store._claims.insert_one({"_id": x.id, "judicator": "zombie", "incarnation": "dead",
                              "at": store._clock.now(), "token": "left"})
    service = service_on(store)
    done = Task(id=x.id, status=Status.SUCCESS, result=Result())
    running = TaskBrief(id=y.id, done=False, status=Status.RUNNING, executor="ex",
                        report_time="")

    started = time.monotonic()
    answer = service.report("ex", [done], [running], vacant=0)
    assert time.monotonic() - started < EXPIRY / 2  # waited at most expiry/4 for X's lock
    assert x.id not in answer.cancel  # its result stays with the executor, sent again later
    got = store.get(y.id)  # the rest of the report was written: Y's progress
    assert got is not None and (got.executor, got.status) == ("ex", Status.RUNNING)
    got = store.get(x.id)
    assert got is not None and not got.done and got.executor == "ex"

    assert [e.hostname for e in store.executors(ago(EXPIRY))] == ["ex"]  # it lives
    assert reap_once(store, EXPIRY, at=later(EXPIRY / 2)) == []  # so X and Y stay its own

    store._claims.delete_one({"_id": x.id})  # etcd dropped the zombie: its lock is cleared
    assert service.report("ex", [done], [running], vacant=0).cancel == [x.id]
    got = store.get(x.id)
    assert got is not None and (got.done, got.status) == (True, Status.SUCCESS)
    # The executor then falls silent: past the expiry its task goes back to the queue.
    assert reap_once(store, EXPIRY, at=later(2 * EXPIRY)) == [y.id]
    got = store.get(y.id)
    assert got is not None and (got.executor, got.status) == (None, Status.RETRYING)


def test_a_hand_in_that_finds_its_task_locked_is_refused_so_the_result_stays(
    store: MongoStore,
) -> None:
    """`hand_in` answers OK only when every result was written or dropped as late: with one
    task locked it raises Locked (ERROR on the wire), and the executor keeps its results for
    its next report; the others were written and are then dropped as late."""
    x, y = held_pair(store)
    store._claims.insert_one({"_id": x.id, "judicator": "zombie", "incarnation": "dead",
                              "at": store._clock.now(), "token": "left"})
    service = service_on(store)
    results = [Task(id=t.id, status=Status.SUCCESS, result=Result()) for t in (x, y)]
    with pytest.raises(Locked):
        service.hand_in("ex", results)
    got = store.get(y.id)
    assert got is not None and got.done  # written all the same
    store._claims.delete_one({"_id": x.id})
    assert sorted(service.report("ex", results, [], vacant=0).cancel) == sorted([x.id, y.id])
    assert all(t is not None and t.done for t in (store.get(x.id), store.get(y.id)))
