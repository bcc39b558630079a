"""The MongoDB store with `bodies_apart` keeps a large task's body in `task_bodies`
(khala/store/mongo/bodies.py), on the real FerretDB: the task's document stays small, a failed
insert and a removal leave no body behind, small tasks and documents from before stay one
document; a store without it writes one document and reads both."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import bson
import pytest
from bson import ObjectId

from khala.model import Case, Compile, Execute, Result, Status, Task, new_id, time_before
from khala.store import open_store
from khala.store.codec import without_body
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


def old_id(seconds_ago: float) -> ObjectId:
    """A fresh ObjectId that says it was made `seconds_ago` seconds ago."""
    stamp = int(time.time() - seconds_ago)
    return ObjectId(stamp.to_bytes(4, "big") + os.urandom(8))


def add_made_at(store: MongoStore, body_id: ObjectId, made: Task) -> None:
    """`made` stored with its body apart under `body_id`, as `add` does."""
    store._bodies.insert_one(body_doc(body_id, made))  # noqa: SLF001
    store._tasks.insert_one(  # noqa: SLF001
        {**task_to_doc(ObjectId(made.id), without_body(made)), "body": body_id})


def test_bodies_no_task_names_go_once_past_the_grace(mongo: MongoStore) -> None:
    """What a judicator dying between a body's write and its task's leaves: swept once older
    than the grace; a named body is kept however old, a fresh orphan until it is old."""
    named, fresh = task(), task()
    add_made_at(mongo, old_id(7200), named)
    mongo.add(fresh)
    orphans = [old_id(7200), old_id(4000)]
    for body_id in orphans:
        mongo._bodies.insert_one(body_doc(body_id, task()))  # noqa: SLF001
    young = old_id(60)
    mongo._bodies.insert_one(body_doc(young, task()))  # noqa: SLF001
    assert mongo.sweep_bodies(time_before(3600)) == 2
    left = {d["_id"] for d in mongo._bodies.find({}, {"_id": 1})}  # noqa: SLF001
    assert young in left and not left & set(orphans) and len(left) == 3
    assert mongo.get(named.id) == named and mongo.get(fresh.id) == fresh
    assert mongo.sweep_bodies(time_before(3600)) == 0
    assert mongo.sweep_bodies(time_before(0)) == 1  # the young one, once past a grace of 0
    assert mongo.get(named.id) == named and mongo.get(fresh.id) == fresh


def test_the_sweep_walks_every_body_a_bounded_batch_a_pass(
        mongo: MongoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pass looks at a bounded number of bodies and goes on where the last stopped, then
    starts over: a body orphaned after the walk passed it (its task removed, the judicator gone
    before the body's delete) is still found on the next round."""
    monkeypatch.setattr(bodies, "SWEEP_BATCH", 2)
    monkeypatch.setattr(bodies, "SWEEP_BATCHES", 1)
    kept = [task() for _ in range(2)]
    for made in kept:
        add_made_at(mongo, old_id(7200), made)
    orphans = {old_id(7100) for _ in range(3)}
    for body_id in orphans:
        mongo._bodies.insert_one(body_doc(body_id, task()))  # noqa: SLF001
    passes = [mongo.sweep_bodies(time_before(3600)) for _ in range(4)]
    assert passes[:3] == [0, 2, 1] and sum(passes) == 3, passes  # ids in order: 2 named first
    late = mongo._tasks.find_one_and_delete({"_id": ObjectId(kept[0].id)})  # noqa: SLF001
    assert late is not None
    gone = [mongo.sweep_bodies(time_before(3600)) for _ in range(3)]
    assert sum(gone) == 1, gone
    assert mongo._bodies.count_documents({}) == 1  # noqa: SLF001
    assert mongo.get(kept[1].id) == kept[1]


def test_a_store_without_bodies_apart_has_none_to_sweep(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        store.add(task())
        assert store.sweep_bodies(time_before(-3600)) == 0
    finally:
        store.close()
