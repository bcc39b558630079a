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
deletes, leaves a body no task names (space, not a task, is lost).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bson import Binary, ObjectId

from khala.model import Task
from khala.store.codec import pack_texts, with_texts

#: Bytes of texts and zips from which a task's body is stored apart.
BODY_MIN = 16 * 1024


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
