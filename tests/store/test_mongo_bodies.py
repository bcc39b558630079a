"""The MongoDB store with `bodies_apart` keeps a large task's body in `task_bodies`
(khala/store/mongo/bodies.py), on the real FerretDB: the task's document stays small, a failed
insert and a removal leave no body behind, small tasks and documents from before stay one
document; a store without it writes one document and reads both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import ObjectId

from khala.errors import Unavailable
from khala.model import Case, Compile, Execute, Result, Status, Task, format_time, new_id
from khala.store import open_store
from khala.store.mongo import bodies
from khala.store.mongo.bodies import BODY_MIN, body_doc
from khala.store.mongo.docs import task_to_doc
from khala.store.mongo.store import MongoStore
from tests.store.test_contract import at

pytestmark = pytest.mark.integration  # a real FerretDB

BIG = "1 2\n" * 50_000


@pytest.fixture
def mongo(mongo_url: str) -> Iterator[MongoStore]:
    store = open_store(mongo_url, bodies_apart=True)
    assert isinstance(store, MongoStore)
    yield store
    store.close()


def task(text: str = BIG) -> Task:
    return Task(id=new_id(), user=2, add_time=at(0), compile=Compile(source=b"PK", language="c"),
                execute=Execute(cases=[Case(text, "3\n"), Case("4 4", "8")]))


def test_a_large_body_is_apart_and_goes_with_its_task(mongo: MongoStore) -> None:
    made = task()
    mongo.add(made)
    doc = mongo._tasks.find_one({"_id": ObjectId(made.id)})  # noqa: SLF001
    assert doc is not None and isinstance(doc.get("body"), ObjectId)
    assert len(bson.encode(doc)) < 4096
    assert mongo._bodies.count_documents({"_id": doc["body"]}) == 1  # noqa: SLF001
    assert mongo.get(made.id) == made
    [taken] = mongo.assign("ex", 1, at(1), frozenset({"c"}))
    assert taken.execute == made.execute
    assert mongo.finish(made.id, "ex", Status.SUCCESS, Result(execute_output=b"3\n"), at(2))
    assert mongo.remove(made.id)
    assert mongo._bodies.count_documents({}) == 0  # noqa: SLF001


def test_a_taken_id_leaves_no_body_and_small_tasks_stay_one_document(
        mongo: MongoStore) -> None:
    made = task()
    assert mongo.insert_new(made)
    other = task("9 9\n" * 50_000)
    other.id = made.id
    assert not mongo.insert_new(other)
    assert mongo._bodies.count_documents({}) == 1  # noqa: SLF001 - the first task's alone
    assert mongo.get(made.id) == made
    small = task("1 2")
    assert len("1 2") < BODY_MIN
    mongo.add(small)
    doc = mongo._tasks.find_one({"_id": ObjectId(small.id)})  # noqa: SLF001
    assert doc is not None and "body" not in doc
    assert mongo._bodies.count_documents({}) == 1  # noqa: SLF001
    assert mongo.get(small.id) == small


def test_a_large_document_from_before_reads_whole(mongo: MongoStore) -> None:
    made = task()
    mongo._tasks.insert_one(task_to_doc(ObjectId(made.id), made))  # noqa: SLF001
    assert mongo.get(made.id) == made
    lean = mongo.get(made.id, lean=True)
    assert lean is not None and [c.input for c in lean.execute.cases] == ["", ""]


def test_without_bodies_apart_a_task_is_one_document_and_both_kinds_read(
        mongo: MongoStore, mongo_url: str) -> None:
    """What a rolling upgrade meets: judicators with and without the setting on one database."""
    plain = open_store(mongo_url)
    assert isinstance(plain, MongoStore)
    try:
        whole, apart = task(), task()
        plain.add(whole)
        mongo.add(apart)
        doc = mongo._tasks.find_one({"_id": ObjectId(whole.id)})  # noqa: SLF001
        assert doc is not None and "body" not in doc
        assert mongo._bodies.count_documents({}) == 1  # noqa: SLF001 - the other task's
        for reader in (plain, mongo):
            assert reader.get(whole.id) == whole and reader.get(apart.id) == apart
        taken = {t.id: t for t in plain.assign("ex", 2, at(1), frozenset({"c"}))}
        assert set(taken) == {whole.id, apart.id}
        assert taken[whole.id].execute == whole.execute
        assert taken[apart.id].execute == apart.execute
    finally:
        plain.close()


def marks(store: MongoStore) -> list[dict[str, Any]]:
    return list(store._marks._marks.find({}))  # noqa: SLF001


def left_behind(store: MongoStore, made: Task, hours: float) -> ObjectId:
    """What a judicator dying between a body's write and its task's leaves, `hours` ago: a
    marked body no task names."""
    body_id = ObjectId()
    store._bodies.insert_one(body_doc(body_id, made))  # noqa: SLF001
    at = format_time(dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=hours))
    store._marks._marks.insert_one({"_id": body_id, "at": at})  # noqa: SLF001
    return body_id


def test_adds_and_removes_leave_no_mark(mongo: MongoStore) -> None:
    made = task()
    mongo.add(made)
    assert marks(mongo) == []
    assert [t.id for t in mongo.assign("ex", 1, at(1), frozenset({"c"}))] == [made.id]
    assert mongo.finish(made.id, "ex", Status.SUCCESS, Result(), at(2))
    assert not mongo.remove(new_id())  # nothing to remove: nothing marked
    assert mongo.remove(made.id)
    assert marks(mongo) == [] and mongo._bodies.count_documents({}) == 0  # noqa: SLF001


def test_a_task_not_done_is_not_removed_and_keeps_its_body_unmarked(mongo: MongoStore) -> None:
    made = task()
    mongo.add(made)
    assert not mongo.remove(made.id)
    assert marks(mongo) == [] and mongo.get(made.id) == made


def test_bodies_left_behind_go_once_past_the_grace(mongo: MongoStore) -> None:
    """A body marked over the grace ago that no task names goes; one a task names (the
    judicator died after the task's insert, before clearing its mark) stays, its mark gone;
    a young mark waits."""
    orphan = left_behind(mongo, task(), 2)
    named = task()
    mongo.add(named)
    body = mongo._tasks.find_one({"_id": ObjectId(named.id)})["body"]  # noqa: SLF001
    mongo._marks.mark(body)  # noqa: SLF001 - a death after the insert, before the clear
    mongo._marks._marks.update_one(  # noqa: SLF001
        {"_id": body}, {"$set": {"at": "2000-01-01T00:00:00.000000"}})
    young = left_behind(mongo, task(), 0.1)
    assert mongo.sweep_bodies() == 1
    assert mongo._bodies.count_documents({"_id": orphan}) == 0  # noqa: SLF001
    assert [m["_id"] for m in marks(mongo)] == [young]
    assert mongo.get(named.id) == named
    assert mongo.sweep_bodies() == 0
    assert mongo._bodies.count_documents({"_id": young}) == 1  # noqa: SLF001


class DiesAfterDelete:
    """The tasks collection of a judicator that dies right after a task's delete."""

    def __init__(self, tasks: Any) -> None:
        self._tasks = tasks

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tasks, name)

    def find_one_and_delete(self, *args: Any, **kwargs: Any) -> Any:
        self._tasks.find_one_and_delete(*args, **kwargs)
        raise RuntimeError("the judicator died")


def test_a_removal_cut_short_is_finished_by_the_sweep(
        mongo: MongoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A judicator dying after a task's delete, before its body's: the mark `remove` writes
    before the delete makes the body found."""
    made = task()
    mongo.add(made)
    [_] = mongo.assign("ex", 1, at(1), frozenset({"c"}))
    assert mongo.finish(made.id, "ex", Status.SUCCESS, Result(), at(2))
    body = mongo._tasks.find_one({"_id": ObjectId(made.id)})["body"]  # noqa: SLF001
    monkeypatch.setattr(mongo, "_tasks", DiesAfterDelete(mongo._tasks))  # noqa: SLF001
    with pytest.raises(RuntimeError):
        mongo.remove(made.id)
    monkeypatch.undo()
    assert [m["_id"] for m in marks(mongo)] == [body]
    assert mongo.sweep_bodies() == 0  # the mark is young yet
    mongo._marks._marks.update_one(  # noqa: SLF001 - an hour later
        {"_id": body}, {"$set": {"at": "2000-01-01T00:00:00.000000"}})
    assert mongo.sweep_bodies() == 1
    assert mongo._bodies.count_documents({}) == 0 and marks(mongo) == []  # noqa: SLF001


def test_a_body_written_too_slowly_is_undone(
        mongo: MongoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past half the grace between the body's write and its task's, the sweep could have taken
    the body: the add gives up (Unavailable) and leaves nothing."""
    monkeypatch.setattr(bodies, "BODY_GRACE", 0.0)
    made = task()
    with pytest.raises(Unavailable):
        mongo.add(made)
    assert mongo.get(made.id) is None and marks(mongo) == []
    assert mongo._bodies.count_documents({}) == 0  # noqa: SLF001


def test_the_sweep_settles_a_bounded_batch_a_pass(
        mongo: MongoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "SWEEP_BATCH", 2)
    for _ in range(3):
        left_behind(mongo, task("5 5\n" * 5_000), 2)
    assert [mongo.sweep_bodies() for _ in range(3)] == [2, 1, 0]
    assert mongo._bodies.count_documents({}) == 0  # noqa: SLF001


def test_a_store_without_bodies_apart_has_none_to_sweep(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        store.add(task())
        assert store.sweep_bodies() == 0
    finally:
        store.close()
