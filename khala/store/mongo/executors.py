"""The MongoDB side of executors' records: each one's last report and the languages it
offers. Mixed into MongoStore (which provides the collection and the document hold).
    executors: {_id: ObjectId(executor id), hostname (unique), report_time, languages: [{…}]}
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from khala.errors import Unavailable
from khala.model import ExecutorInfo, Language, new_id
from khala.store.codec import language_of_row, language_row, merge_languages
from khala.store.mongo.client import unavailable
from khala.store.mongo.docs import LANGUAGE_KEYS, executor_key


class MongoExecutors:
    _executors: Collection[dict[str, Any]]

    def _exclusive(self, key: str, insist: bool = True) -> AbstractContextManager[None]:
        raise NotImplementedError  # MongoStore's

    @unavailable
    def touch_executor(self, hostname: str, now: str,
                       languages: list[Language] | None = None) -> None:
        sets: dict[str, Any] = {"report_time": now}
        if languages is not None:
            # documents, not pairs: FerretDB stores no nested arrays
            sets["languages"] = [dict(zip(LANGUAGE_KEYS, language_row(x), strict=True))
                                 for x in languages]
        for _ in range(3):  # two racing upserts of a new hostname: one gets a duplicate key
            try:
                with self._exclusive(executor_key(hostname), insist=False):
                    self._executors.update_one(  # a new record gets a random id
                        {"hostname": hostname},
                        {"$set": sets, "$setOnInsert": {"_id": ObjectId(new_id())}},
                        upsert=True)
                return
            except DuplicateKeyError:
                continue
        raise Unavailable(f"could not record executor {hostname!r}: repeated key conflicts")

    @unavailable
    def executors(self, since: str) -> list[ExecutorInfo]:
        cursor = self._executors.find({"report_time": {"$gte": since}}).sort("hostname", ASCENDING)
        return [ExecutorInfo(str(d["_id"]), d["hostname"], d["report_time"]) for d in cursor]

    @unavailable
    def languages(self, since: str) -> list[Language]:
        docs = list(self._executors.find({"report_time": {"$gte": since}},
                                          {"languages": 1, "hostname": 1}))
        return merge_languages(
            [[language_of_row([x.get(k) for k in LANGUAGE_KEYS]) for x in d.get("languages") or []]
             for d in docs], [str(d.get("hostname")) for d in docs])

    @unavailable
    def remove_executors(self, before: str) -> list[str]:
        silent = {"report_time": {"$lt": before}}
        removed: list[str] = []
        for doc in list(self._executors.find(silent, {"_id": 1, "hostname": 1})):
            # Delete one by one with the condition repeated: an executor that reported in
            # between is kept and not listed as removed.
            with self._exclusive(executor_key(str(doc["hostname"]))):
                gone = self._executors.find_one_and_delete({"_id": doc["_id"], **silent})
            if gone is not None:
                removed.append(gone["hostname"])
        return sorted(removed)

    @unavailable
    def remove_executor(self, hostname: str) -> bool:
        with self._exclusive(executor_key(hostname)):
            return self._executors.delete_many({"hostname": hostname}).deleted_count > 0
