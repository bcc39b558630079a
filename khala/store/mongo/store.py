"""MongoDB store: the cluster backend, shared by several judicators.

Every conditional change is one single-document update with its condition in the filter
(`update_one`, `find_one_and_update`); no multi-document transactions. On MongoDB that is atomic
and nothing else is done: the hooks `_exclusive` and `_take` are where a server that is not
atomic there (FerretDB, khala/store/mongo/ferret.py) holds the document meanwhile. FerretDB
accepts `majority` read and write concerns; a replica set needs them so that an acknowledged
task survives a primary failover.

Documents:
    tasks:     {_id: ObjectId(task id), user, add_time, done, status, executor, report_time,
                compile: {source: binary, command, timeout, memory_limit},
                execute: {input, data: binary, command, timeout, standard, …limits},
                result: {…, compile_report: {…} | null, execute_report: {…} | null} | null,
                attempts: times assigned}
    executors: khala/store/mongo/executors.py
    task_bodies, pending_bodies: a large task's body apart (khala/store/mongo/bodies.py)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import bson
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import (
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
)
from pymongo.read_concern import ReadConcern

from khala.errors import Unavailable
from khala.model import (
    PageQuery,
    Result,
    SearchQuery,
    Status,
    Task,
    TaskBrief,
    time_before,
)
from khala.rules import lifecycle
from khala.rules.states import Bound, Cond
from khala.store.base import Store
from khala.store.codec import (
    key_range,
    without_body,
)
from khala.store.files import task_owner
from khala.store.mongo.bodies import BODY_GRACE, BODY_MIN, BodyMarks, body_size, with_body
from khala.store.mongo.client import MongoClient, connect, parse_write_concern, unavailable
from khala.store.mongo.docs import (
    BRIEF_FIELDS,
    LEAN_PROJECTION,
    QUEUE_ORDER,
    assign_filter,
    doc_brief,
    mongo_filter,
    mongo_set,
    oid_of,
    search_filter,
    task_from_doc,
    task_key,
    task_to_doc,
)
from khala.store.mongo.executors import MongoExecutors
from khala.store.mongo.files import MongoFiles
from khala.store.mongo.fit import fit_document, output_budget
from khala.store.mongo.images import MongoImages
from khala.store.mongo.jobs import FAIR_INDEX, HEAD_INDEX, MongoJobs
from khala.store.mongo.ops import MongoOpsStore
from khala.store.mongo.problems import MongoProblems, MongoProblemTasks

log = logging.getLogger(__name__)

# MongoDB refusing a document over its size limit (BSONObjectTooLarge, the result of an update)
TOO_LARGE_CODES = frozenset({10334, 17419, 17420})
TASK_INDEXES: list[tuple[str, list[tuple[str, int]]]] = [
    ("add_time_id", [("add_time", ASCENDING), ("_id", ASCENDING)]),
    ("user_add_time_id", [("user", ASCENDING), ("add_time", ASCENDING), ("_id", ASCENDING)]),
    ("queue", [("done", ASCENDING), ("executor", ASCENDING), ("add_time", ASCENDING),
               ("_id", ASCENDING)]),
    ("held", [("executor", ASCENDING), ("done", ASCENDING), ("report_time", ASCENDING)]),
    ("fair", FAIR_INDEX),
    ("head", HEAD_INDEX),
    ("body", [("body", ASCENDING)]),  # the sweep's question: does a task name this body?
]


class MongoStore(MongoJobs, MongoExecutors, MongoProblemTasks, Store):
    def __init__(
        self,
        client: MongoClient,
        database: str,
        write_concern: str | int = "majority",
        read_concern: str = "majority",
        bodies_apart: bool = False,
    ) -> None:
        self._client = client
        self._bodies_apart = bodies_apart  # for new tasks (bodies.py); read either way
        db = client.get_database(
            database,
            write_concern=parse_write_concern(write_concern),
            read_concern=ReadConcern(read_concern or None),
        )
        self._tasks: Collection[dict[str, Any]] = db["tasks"]
        self._executors: Collection[dict[str, Any]] = db["executors"]
        self._keys: Collection[dict[str, Any]] = db["keys"]
        self._signals: Collection[dict[str, Any]] = db["signals"]
        self._jobs: Collection[dict[str, Any]] = db["jobs"]
        self._history: Collection[dict[str, Any]] = db["task_history"]
        self._bodies: Collection[dict[str, Any]] = db["task_bodies"]  # khala/store/mongo/bodies.py
        self._create_indexes()
        self._marks = BodyMarks(db["pending_bodies"], self._bodies, self._tasks)
        self.files = MongoFiles(db)
        self.problems = MongoProblems(db)
        self.images = MongoImages(db)
        self._attach(client, db)
        # The operations side: the same client, the database's default concerns.
        self.ops = self._open_ops(client.get_database(database))

    def _attach(self, client: MongoClient, db: Any) -> None:
        """What the store needs beside its collections (nothing on MongoDB)."""

    def _open_ops(self, db: Any) -> MongoOpsStore:
        return MongoOpsStore(db)

    @classmethod
    def from_url(
        cls, url: str, write_concern: str | int = "majority", read_concern: str = "majority"
    ) -> MongoStore:
        """`mongodb://host[,host…]/[database][?options]`; the database defaults to `khala`."""
        client, database = connect(url)
        try:
            return cls(client, database, write_concern, read_concern)
        except BaseException:
            client.close()
            raise

    # ------------------------------------------------------------------ holding a document
    # On MongoDB a conditional update is atomic by itself: nothing to hold. A store whose
    # server runs it as a read then a write (khala/store/mongo/ferret.py) overrides these.

    def _exclusive(self, key: str, insist: bool = True) -> AbstractContextManager[None]:
        """Hold the document `key` names for one conditional write. `insist` False: a refresh
        that must not fail, written even when the document stays held past the wait."""
        return contextlib.nullcontext()

    def _take(self, oid: ObjectId, attempt: int, executor: str, now: str) -> Task | None:
        """Assign one queued task if this caller wins attempt number `attempt` of it."""
        return self._assign_one(oid, attempt, executor, now)

    def _left_alone(self) -> set[Any]:
        """Queued tasks assignment skips for now (none here)."""
        return set()

    @unavailable
    def _create_indexes(self) -> None:
        for name, keys in TASK_INDEXES:
            self._tasks.create_index(keys, name=name)
        self._executors.create_index([("hostname", ASCENDING)], name="hostname", unique=True)
        self._executors.create_index([("report_time", ASCENDING)], name="report_time")
        self._keys.create_index([("task", ASCENDING)], name="task")
        self._signals.create_index([("task", ASCENDING)], name="task")
        self._problem_indexes()

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ tasks (clients)

    @unavailable
    def add(self, task: Task) -> str:
        oid = oid_of(task.id)
        if oid is None:
            raise ValueError(f"task id {task.id!r} is not an ObjectId")
        if not self._bodies_apart or body_size(task) < BODY_MIN:
            self._tasks.insert_one(task_to_doc(oid, task))
            return task.id
        body_id = self._marks.write(task)
        try:
            self._tasks.insert_one({**task_to_doc(oid, without_body(task)), "body": body_id})
        except DuplicateKeyError:  # certainly not written: the body goes again
            self._marks.drop(body_id)
            raise
        self._marks.clear(body_id)
        return task.id

    @unavailable
    def get(self, task_id: str, lean: bool = False) -> Task | None:
        oid = oid_of(task_id)
        doc = None if oid is None else self._tasks.find_one(
            {"_id": oid}, LEAN_PROJECTION if lean else None)
        return None if doc is None else self._whole(doc, lean)

    def _whole(self, doc: Mapping[str, Any], lean: bool = False) -> Task | None:
        """The task a document holds, with its body when that is apart (lean: without the
        cases' texts); None when the body is gone (its task removed meanwhile)."""
        task = task_from_doc(doc)
        if doc.get("body") is None:
            return task
        body = self._bodies.find_one({"_id": doc["body"]}, {"texts": 0} if lean else None)
        return None if body is None else with_body(task, body)

    @unavailable
    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        where = search_filter(query)
        if where is None:
            return 0, []
        total = self._tasks.count_documents(where)
        if not total:
            return 0, []
        direction = ASCENDING if query.old_to_new else DESCENDING
        cursor = self._tasks.find(where, BRIEF_FIELDS).sort(
            [("add_time", direction), ("_id", direction)]
        )
        if query.limit:
            cursor = cursor.skip(int(query.limit) * int(query.page)).limit(int(query.limit))
        return total, [doc_brief(doc) for doc in cursor]

    @unavailable
    def cancel(self, task_id: str, now: str) -> bool:
        return self._update(task_id, lifecycle.CANCEL.bind(now=now))

    # ------------------------------------------------------------------ tasks (executors)

    @unavailable
    def assign(self, executor: str, count: int, now: str,
               languages: frozenset[str] | None = None, images: bool = True) -> list[Task]:
        taken: list[Task] = []
        for _ in range(max(count, 0) + 3):  # a pass re-reads the queue head others took
            wanted = count - len(taken)
            if wanted <= 0:
                break
            held = self._left_alone()
            found = self._fair_heads(2 * wanted + 4 + len(held), assign_filter(languages, images))
            heads = [h for h in found if h["_id"] not in held]
            if not heads:
                break
            for head in heads:
                task = self._take(head["_id"], int(head.get("attempts", 0)), executor, now)
                if task is not None:
                    taken.append(task)
                    if len(taken) == count:
                        break
        return taken

    def _assign_one(self, oid: ObjectId, attempt: int, executor: str, now: str) -> Task | None:
        change = lifecycle.ASSIGN.bind(executor=executor, now=now)
        doc = self._tasks.find_one_and_update(
            {**mongo_filter(change.where), "_id": oid, "attempts": attempt},
            {"$set": {**mongo_set(change.sets), "attempts": attempt + 1}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else self._whole(doc)

    @unavailable
    def has_queued(self) -> bool:
        return self._tasks.find_one(mongo_filter(lifecycle.QUEUED), {"_id": 1}) is not None

    @unavailable
    def finish(
        self, task_id: str, executor: str, status: Status, result: Result, now: str
    ) -> bool | None:
        def bound(result: Result) -> Bound:
            return lifecycle.FINISH.bind(executor=executor, status=status, result=result, now=now)

        return self._record(task_id, result, bound)

    @unavailable
    def keep(self, task_id: str, executor: str, result: Result) -> bool | None:
        def bound(result: Result) -> Bound:
            return lifecycle.KEEP.bind(executor=executor, result=result)

        return self._record(task_id, result, bound)

    def _record(self, task_id: str, result: Result, bound: Callable[[Result], Bound]) -> bool:
        """Write a result with `bound`; one too large for the document is cut to fit."""
        try:
            return self._update(task_id, bound(result))
        except (DocumentTooLarge, OperationFailure) as exc:
            if isinstance(exc, OperationFailure) and exc.code not in TOO_LARGE_CODES:
                raise
        fitted = self._fit(task_id, result)
        log.warning("result of %s too large for its document: outputs cut", task_id)
        return self._update(task_id, bound(fitted))

    def _fit(self, task_id: str, result: Result) -> Result:
        """`result` cut so that the task document holding it stays under MongoDB's document
        limit (khala/store/mongo/fit.py)."""
        doc = self._tasks.find_one({"_id": oid_of(task_id)}, {"result": 0}) or {}
        return fit_document(result, output_budget(len(bson.encode(doc)), 0),
                            lambda r: len(bson.encode(mongo_set({"result": r}))))

    @unavailable
    def progress(self, task_id: str, executor: str, status: Status, now: str) -> bool | None:
        change = lifecycle.PROGRESS.bind(executor=executor, status=status, now=now)
        return self._update(task_id, change)

    @unavailable
    def held_by(self, executor: str) -> list[TaskBrief]:
        return self._briefs(lifecycle.select(lifecycle.HELD, executor=executor))

    @unavailable
    def requeue(self, task_id: str, executor: str, now: str) -> bool | None:
        return self._update(task_id, lifecycle.REQUEUE.bind(executor=executor, now=now))

    @unavailable
    def stale_tasks(self, before: str) -> list[TaskBrief]:
        return self._briefs(lifecycle.select(lifecycle.STALE, before=before))

    def _update(self, task_id: str, change: Bound) -> bool:
        """One conditional update of one task, atomic; True if it matched."""
        oid = oid_of(task_id)
        if oid is None:
            return False
        with self._exclusive(task_key(oid)):
            return self._write(oid, change)

    def _write(self, oid: ObjectId, change: Bound) -> bool:
        outcome = self._tasks.update_one(
            {"_id": oid, **mongo_filter(change.where)}, {"$set": mongo_set(change.sets)}
        )
        return outcome.matched_count == 1

    def _briefs(self, where: Mapping[str, Cond]) -> list[TaskBrief]:
        cursor = self._tasks.find(mongo_filter(where), BRIEF_FIELDS).sort(QUEUE_ORDER)
        return [doc_brief(doc) for doc in cursor]

    # ------------------------------------------------------------------ API v2
    # keys:    {_id: "<client key>", task: "<task id>"} — the unique _id makes claim_key an
    #          atomic insert-if-absent, also on FerretDB v1
    # signals: {_id: ObjectId, task: "<task id>", signum, at (orders them; then _id)}

    @unavailable
    def claim_key(self, key: str, task_id: str) -> str:
        for _ in range(3):  # the key may be removed (its task deleted) between the two calls
            try:
                self._keys.insert_one({"_id": key, "task": task_id})
                return task_id
            except DuplicateKeyError:
                doc = self._keys.find_one({"_id": key})
            if doc is not None:
                return str(doc["task"])
        raise Unavailable(f"could not claim key {key!r}: it keeps changing")

    @unavailable
    def insert_new(self, task: Task) -> bool:
        try:
            self.add(task)
        except DuplicateKeyError:
            return False
        return True

    @unavailable
    def resolve(self, ref: str) -> str | None:
        doc = self._keys.find_one({"_id": ref})
        if doc is not None:
            return str(doc["task"])
        oid = oid_of(ref)
        if oid is None or self._tasks.find_one({"_id": oid}, {"_id": 1}) is None:
            return None
        return ref

    @unavailable
    def page(self, query: PageQuery) -> list[TaskBrief]:
        where = search_filter(SearchQuery(
            user=query.user, start_time=query.start_time, end_time=query.end_time
        )) or {}
        if query.statuses:
            where["status"] = {"$in": [int(s) for s in query.statuses]}
        if query.key_prefix:  # a range of the keys' _id index
            low, high = key_range(query.key_prefix)
            keyed = self._keys.find({"_id": {"$gte": low, "$lt": high}}, {"task": 1})
            where["_id"] = {"$in": [o for o in (oid_of(d["task"]) for d in keyed) if o]}
        after = "$gt" if query.old_to_new else "$lt"
        cursor_oid = oid_of(query.after_id or "")
        if query.after_time is not None and cursor_oid is not None:
            where["$or"] = [
                {"add_time": {after: query.after_time}},
                {"add_time": query.after_time, "_id": {after: cursor_oid}},
            ]
        direction = ASCENDING if query.old_to_new else DESCENDING
        fields = {**BRIEF_FIELDS, "key": 1}
        found = self._tasks.find(where, fields).sort(
            [("add_time", direction), ("_id", direction)]
        ).limit(int(query.limit))
        return [doc_brief(doc) for doc in found]

    @unavailable
    def remove(self, task_id: str) -> bool:
        oid = oid_of(task_id)
        if oid is None:
            return False
        with self._exclusive(task_key(oid)):
            done = self._tasks.find_one({"_id": oid, "done": True}, {"body": 1})
            if done is None:
                return False
            body = done.get("body")
            self._marks.mark(body)  # first: a death after the task's delete leaves it marked
            if self._tasks.find_one_and_delete({"_id": oid, "done": True}) is None:
                self._marks.clear(body)
                return False
        self._marks.drop(body)
        self._keys.delete_many({"task": task_id})
        self._signals.delete_many({"task": task_id})
        self._history.delete_many({"task": task_id})
        self.files.release(task_owner(task_id))  # its outputs kept as files, if any
        return True

    @unavailable
    def sweep_bodies(self) -> int:
        return self._marks.sweep(time_before(BODY_GRACE))

    @unavailable
    def add_signal(self, task_id: str, signum: int, now: str) -> None:
        self._signals.insert_one({"task": task_id, "signum": int(signum), "at": now})

    @unavailable
    def take_signals(self, task_ids: list[str]) -> list[tuple[str, int]]:
        if not task_ids:
            return []
        taken = []
        found = self._signals.find({"task": {"$in": list(task_ids)}})
        for doc in list(found.sort([("at", ASCENDING), ("_id", ASCENDING)])):  # as sent
            if self._signals.delete_one({"_id": doc["_id"]}).deleted_count == 1:
                taken.append((str(doc["task"]), int(doc["signum"])))
        return taken
