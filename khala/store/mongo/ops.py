"""The MongoDB side of the operations store (khala/store/ops.py), on the task store's client.

    executor_stats: {_id: name, report_time, stats: JSON text}
    webhooks:       {_id: task id, url, state, attempts, next_at, lease_until, last_status,
                     last_error, delivered_at}  (states: khala/rules/webhooks.py)
"""

from __future__ import annotations

import contextlib
import json
from contextlib import AbstractContextManager
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from khala.rules import lifecycle, webhooks
from khala.rules.states import Bound
from khala.store.mongo.docs import mongo_any, mongo_filter, mongo_set, webhook_key
from khala.store.ops import WEBHOOK_FIELDS, OpsStore


class MongoOpsStore(OpsStore):
    def __init__(self, db: Any) -> None:
        self._tasks, self._stats, self._hooks = db["tasks"], db["executor_stats"], db["webhooks"]
        self._hooks.create_index([("state", 1), ("next_at", 1)], name="due")

    def _exclusive(self, key: str) -> AbstractContextManager[None]:
        """Hold the document `key` names for one conditional write (MongoStore._exclusive)."""
        return contextlib.nullcontext()

    def queue_length(self) -> int:
        return int(self._tasks.count_documents(mongo_filter(lifecycle.QUEUED)))

    def put_executor_stats(self, name: str, stats: dict[str, Any], now: str) -> None:
        self._stats.replace_one({"_id": name}, {"_id": name, "report_time": now,
                                                "stats": json.dumps(stats)}, upsert=True)

    def executor_stats(self, since: str) -> list[dict[str, Any]]:
        docs = self._stats.find({"report_time": {"$gte": since}}).sort("_id", ASCENDING)
        return [{**json.loads(d["stats"]), "name": d["_id"], "report_time": d["report_time"]}
                for d in docs]

    def add_webhook(self, task_id: str, url: str) -> None:
        doc = {"_id": task_id, "url": url, "state": webhooks.PENDING, "attempts": 0,
               "next_at": "", "lease_until": "", "last_status": None, "last_error": "",
               "delivered_at": ""}
        try:
            self._hooks.insert_one(doc)
        except DuplicateKeyError:
            pass

    @staticmethod
    def _out(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        return {"task_id": doc["_id"], **{k: doc.get(k) for k in WEBHOOK_FIELDS[1:]}}

    def webhook(self, task_id: str) -> dict[str, Any] | None:
        return self._out(self._hooks.find_one({"_id": task_id}))

    def webhooks_ready(self, task_ids: list[str], now: str) -> int:
        change = webhooks.MAKE_READY.bind(now=now)
        return int(self._hooks.update_many(
            {"_id": {"$in": list(task_ids)}, **self._where(change)},
            {"$set": self._sets(change)}).modified_count)

    def pending_webhooks(self, limit: int, after: str = "") -> list[str]:
        found = self._hooks.find(
            {**mongo_filter(webhooks.PENDING_ONLY, webhooks.FIELDS), "_id": {"$gt": after}},
            {"_id": 1})
        return [d["_id"] for d in found.sort("_id", ASCENDING).limit(limit)]

    def claim_webhook(self, now: str, lease_until: str) -> dict[str, Any] | None:
        due = webhooks.claim(now, lease_until)
        doc = self._hooks.find_one_and_update(
            mongo_any(due, webhooks.FIELDS), {"$set": self._sets(due[0])},
            sort=[("next_at", ASCENDING)], return_document=ReturnDocument.AFTER)
        return self._out(doc)

    def webhook_attempted(self, task_id: str, change: Bound) -> bool:
        return self._change(task_id, change)

    def _change(self, task_id: str, change: Bound) -> bool:
        """One conditional update of one webhook's record; True if it matched."""
        with self._exclusive(webhook_key(task_id)):
            outcome = self._hooks.update_one({"_id": task_id, **self._where(change)},
                                             {"$set": self._sets(change)})
        return outcome.matched_count == 1

    @staticmethod
    def _where(change: Bound) -> dict[str, Any]:
        return mongo_filter(change.where, webhooks.FIELDS)

    @staticmethod
    def _sets(change: Bound) -> dict[str, Any]:
        return mongo_set(change.sets, webhooks.FIELDS)
