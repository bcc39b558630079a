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
deletes, leaves a body no task names (space, not a task, is lost): `BodyMarks` finds those.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from bson import Binary, ObjectId
from pymongo.collection import Collection

from khala.errors import Unavailable
from khala.model import Task, now
from khala.store.codec import pack_texts, with_texts

#: Bytes of texts and zips from which a task's body is stored apart.
BODY_MIN = 16 * 1024
#: How old a body's mark (below) must be before the sweep settles it. More than any difference
#: between judicators' clocks, and twice the longest wait `BodyMarks.write` allows between a
#: body's write and its task's.
BODY_GRACE = 3600.0
#: Marks one sweep settles at most.
SWEEP_BATCH = 500


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


class BodyMarks:
    """Marks, in `pending_bodies`, of bodies that no task may name: written before a body and
    cleared once its task is in; written before a task's removal and cleared once its body
    is gone. A mark outlives its two writes only when a judicator died between them, so the
    sweep reads this small collection, never the bodies (FerretDB reads every document a
    query scans), and deletes a marked body only when no task names it."""

    def __init__(self, marks: Collection[dict[str, Any]], bodies: Collection[dict[str, Any]],
                 tasks: Collection[dict[str, Any]]) -> None:
        self._marks, self._bodies, self._tasks = marks, bodies, tasks

    def write(self, task: Task) -> ObjectId:
        """Store `task`'s body under a new id, marked. A write slower than half the grace is
        undone (Unavailable): the sweep could take the body before its task is in."""
        body_id = ObjectId()
        started = time.monotonic()
        self.mark(body_id)
        self._bodies.insert_one(body_doc(body_id, task))
        if time.monotonic() - started > BODY_GRACE / 2:
            self.drop(body_id)
            raise Unavailable("the store took too long to write a task's body; submit again")
        return body_id

    # `None` below: a task whose body is in its own document, nothing to mark

    def mark(self, body_id: ObjectId | None) -> None:
        if body_id is not None:
            self._marks.replace_one({"_id": body_id}, {"_id": body_id, "at": now()},
                                    upsert=True)

    def clear(self, body_id: ObjectId | None) -> None:
        if body_id is not None:
            self._marks.delete_one({"_id": body_id})

    def drop(self, body_id: ObjectId | None) -> None:
        """Delete a marked body (its task was not written, or is removed), then its mark."""
        if body_id is not None:
            self._bodies.delete_one({"_id": body_id})
            self.clear(body_id)

    def sweep(self, before: str) -> int:
        """Settle the marks made before `before`: a body no task names goes; how many went."""
        gone = 0
        for mark in list(self._marks.find({"at": {"$lt": before}}).limit(SWEEP_BATCH)):
            body_id = mark["_id"]
            if self._tasks.find_one({"body": body_id}, {"_id": 1}) is None:
                gone += self._bodies.delete_one({"_id": body_id}).deleted_count
            self.clear(body_id)
        return gone
