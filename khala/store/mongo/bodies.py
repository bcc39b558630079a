"""A large task's body in a collection of its own (MongoDB).

A task's document is read and written whole by every status change on FerretDB (a read, then a
write of the document), and rewritten as a new version by MongoDB's storage engine; the test
server also reads every document a query scans. A body — the zips, the execute input and
standard, every case's texts — of BODY_MIN bytes or more is therefore stored once in
`task_bodies`, under an id of its own that the task's document names (`body`); that document
keeps the task with those fields empty. Smaller tasks stay one document.

Without multi-document transactions the task's insert stays the one step that makes a task
exist (a keyed submission relies on it: khala/judicator/tasks.py): the body goes in first, and
is deleted again when the task's insert fails as a duplicate (certainly not written). A body is
deleted after its task; a judicator that dies between the two inserts, or between the two
deletes, leaves a body no task names (space, not a task, is lost): `BodySweep` removes those.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from bson import Binary, ObjectId
from pymongo import ASCENDING
from pymongo.collection import Collection

from khala.model import Task
from khala.store.codec import pack_texts, with_texts

#: Bytes of texts and zips from which a task's body is stored apart.
BODY_MIN = 16 * 1024
#: Bodies one query of a sweep looks at, and queries a sweep makes at most.
SWEEP_BATCH = 500
SWEEP_BATCHES = 20


def body_size(task: Task) -> int:
    c, e = task.compile, task.execute
    return (len(c.source) + len(e.data) + len(e.input) + len(e.standard)
            + sum(len(x.input) + len(x.standard) for x in e.cases))


def body_doc(body_id: ObjectId, task: Task) -> dict[str, Any]:
    io, texts = pack_texts(task)  # apart: a lean read projects `texts` away (store.py, get)
    return {"_id": body_id, "source": Binary(task.compile.source),
            "data": Binary(task.execute.data), "io": Binary(io), "texts": Binary(texts)}


def with_body(task: Task, body: dict[str, Any]) -> Task:
    """`task`, read from a document whose body is apart, with `body` (its case texts left
    empty when `body` was read without them)."""
    texts = body.get("texts")
    execute = replace(task.execute, data=bytes(body["data"]))
    return replace(task, compile=replace(task.compile, source=bytes(body["source"])),
                   execute=with_texts(execute, bytes(body["io"]),
                                      None if texts is None else bytes(texts)))


class BodySweep:
    """Removes bodies no task names, once made before a grace. A body orphaned by a removal
    was made long before, so a sweep cannot stop at the bodies made since its last pass:
    it walks every body in id order, at most SWEEP_BATCHES × SWEEP_BATCH a pass, going on
    where the last pass stopped and starting over from the oldest after the newest."""

    def __init__(self, bodies: Collection[dict[str, Any]],
                 tasks: Collection[dict[str, Any]]) -> None:
        self._bodies, self._tasks = bodies, tasks
        self._after: ObjectId | None = None  # the last body the walk looked at

    def sweep(self, before: dt.datetime) -> int:
        """One pass over bodies made before `before` (naive UTC); how many went."""
        limit = ObjectId.from_datetime(before.replace(tzinfo=dt.UTC))
        gone = 0
        for _ in range(SWEEP_BATCHES):
            ids = self._next_ids(limit)
            if not ids:
                self._after = None
                break
            named = {doc["body"] for doc in self._tasks.find(
                {"body": {"$in": ids}}, {"body": 1, "_id": 0})}
            orphans = [i for i in ids if i not in named]
            if orphans:
                gone += self._bodies.delete_many({"_id": {"$in": orphans}}).deleted_count
            self._after = ids[-1]
        return gone

    def _next_ids(self, limit: ObjectId) -> list[ObjectId]:
        where: dict[str, Any] = {"$lt": limit}
        if self._after is not None:
            where["$gt"] = self._after
        found = self._bodies.find({"_id": where}, {"_id": 1}).sort(
            "_id", ASCENDING).limit(SWEEP_BATCH)
        return [doc["_id"] for doc in found]
