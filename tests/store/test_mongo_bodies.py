"""The MongoDB store with `bodies_apart` keeps a large task's body in `task_bodies`
(khala/store/mongo/bodies.py), on the real FerretDB: the task's document stays small, a failed
insert and a removal leave no body behind, small tasks and documents from before stay one
document; a store without it writes one document and reads both."""

from __future__ import annotations

from collections.abc import Iterator

import bson
import pytest
from bson import ObjectId

from khala.model import Case, Compile, Execute, Result, Status, Task, new_id
from khala.store import open_store
from khala.store.mongo.bodies import BODY_MIN
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
