"""The store on FerretDB (the MongoDB-wire test server), chosen when the server says it is
FerretDB (buildInfo, khala/store/mongo/client.py).

FerretDB v1 runs every conditional update and delete as a query followed by a write of the whole
document by `_id`, so two racing conditional writes of one document can both match and the later
one silently reverts the earlier (a cancel undone by a progress write). Here every such write —
to a task (assign, progress, finish, requeue, cancel, remove), a job (save, delete), an
executor's record (refresh, removal) and a webhook's delivery (ready, claim, outcome) — first
takes that document's lock (khala/store/mongo/ferret_locks.py). Assignment and a webhook's claim
do not wait: they skip a locked document (a task is then left alone for a while, 50 ms doubling
to 1 s). Any other write waits up to LOCK_WAIT_SECONDS; past it an executor's write answers None
(left for its next report, khala/store/base.py), any other raises LockHeld (an Unavailable),
and an executor's refresh is written without the lock. Cost: two round trips more per write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument

from khala.model import Result, Status, Task
from khala.rules import webhooks
from khala.rules.states import Bound
from khala.store.mongo.client import MongoClient, server_time
from khala.store.mongo.docs import mongo_any, task_key, webhook_key
from khala.store.mongo.ferret_claims import Backoff, ServerClock, Writers
from khala.store.mongo.ferret_locks import LockHeld, Locks
from khala.store.mongo.ops import MongoOpsStore
from khala.store.mongo.store import MongoStore

log = logging.getLogger(__name__)
#: Due webhooks a claim looks at in one call (it skips those another writer holds).
CLAIM_CANDIDATES = 8


class FerretStore(MongoStore):
    """MongoStore whose writes hold their document (see the module's text)."""

    def _attach(self, client: MongoClient, db: Any) -> None:
        self._clock = ServerClock(lambda: server_time(client))
        self._writers = Writers(db["writers"], self._clock.now)
        self._claims = db["claims"]
        self._locks = Locks(self._claims, self._clock.now, self._writers.me,
                            self._writers.is_live)
        self._backoff = Backoff()

    def _open_ops(self, db: Any) -> MongoOpsStore:
        try:
            return FerretOps(db, self._locks)
        except BaseException:
            self._writers.close()
            raise

    def close(self) -> None:
        self._writers.close()
        super().close()

    # ------------------------------------------------------------------ holding a document

    def _exclusive(self, key: str, insist: bool = True) -> AbstractContextManager[None]:
        return self._locks.hold(key, insist)

    def _take(self, oid: ObjectId, attempt: int, executor: str, now: str) -> Task | None:
        """Without waiting: a task another writer holds is left alone for a while (backing
        off) unless its lock is orphaned, which is then cleared."""
        key = task_key(oid)
        token = self._locks.try_take(key)
        if token is None:
            if not self._locks.clear_if_orphaned(key):
                self._backoff.hold(oid)
            return None
        try:
            return self._assign_one(oid, attempt, executor, now)
        finally:
            self._locks.release(key, token)

    def _left_alone(self) -> set[Any]:
        return self._backoff.held()

    # ------------------------------------------------------------------ an executor's writes

    def finish(self, task_id: str, executor: str, status: Status, result: Result, now: str
               ) -> bool | None:
        return _unless_held(task_id, lambda: super(FerretStore, self).finish(
            task_id, executor, status, result, now))

    def keep(self, task_id: str, executor: str, result: Result) -> bool | None:
        return _unless_held(task_id, lambda: super(FerretStore, self).keep(
            task_id, executor, result))

    def progress(self, task_id: str, executor: str, status: Status, now: str) -> bool | None:
        return _unless_held(task_id, lambda: super(FerretStore, self).progress(
            task_id, executor, status, now))

    def requeue(self, task_id: str, executor: str, now: str) -> bool | None:
        return _unless_held(task_id, lambda: super(FerretStore, self).requeue(
            task_id, executor, now))


def _unless_held(task_id: str, write: Callable[[], bool | None]) -> bool | None:
    """`write()`; None when its document stayed held past the wait."""
    try:
        return write()
    except LockHeld as exc:
        log.warning("task %s not written now (%s): left for the executor's next report",
                    task_id, exc)
        return None


class FerretOps(MongoOpsStore):
    """The operations store whose webhook writes hold their record."""

    def __init__(self, db: Any, locks: Locks) -> None:
        super().__init__(db)
        self._locks = locks

    def _exclusive(self, key: str) -> AbstractContextManager[None]:
        return self._locks.hold(key)

    def webhooks_ready(self, task_ids: list[str], now: str) -> int:
        change = webhooks.MAKE_READY.bind(now=now)
        pending = self._hooks.find({"_id": {"$in": list(task_ids)}, **self._where(change)},
                                   {"_id": 1})
        return sum(self._change(str(d["_id"]), change) for d in list(pending))

    def claim_webhook(self, now: str, lease_until: str) -> dict[str, Any] | None:
        due = webhooks.claim(now, lease_until)
        where = mongo_any(due, webhooks.FIELDS)
        found = self._hooks.find(where, {"_id": 1}).sort("next_at", ASCENDING)
        for doc in list(found.limit(CLAIM_CANDIDATES)):
            claimed = self._claim_one(str(doc["_id"]), where, due[0])
            if claimed is not None:
                return self._out(claimed)
        return None

    def _claim_one(self, task_id: str, where: dict[str, Any], claim: Bound
                   ) -> dict[str, Any] | None:
        key = webhook_key(task_id)
        token = self._locks.try_take(key)
        if token is None:
            self._locks.clear_if_orphaned(key)
            return None
        try:
            doc: dict[str, Any] | None = self._hooks.find_one_and_update(
                {"_id": task_id, **where}, {"$set": self._sets(claim)},
                return_document=ReturnDocument.AFTER)
            return doc
        finally:
            self._locks.release(key, token)
