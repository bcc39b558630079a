"""The MongoDB side of issue 15: the jobs collection and the candidate gathering of fair
dispatch. Mixed into MongoStore (which provides the collections).

    jobs: {_id: "<name>", spec: {…}, state: {…}, version}
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from khala import lifecycle
from khala.dispatch import MAX_LEVELS, MAX_USERS, Candidate, fair_order
from khala.store.base import StoredJob

FAIR_INDEX = [("done", ASCENDING), ("executor", ASCENDING), ("priority", DESCENDING),
              ("user", ASCENDING), ("add_time", ASCENDING), ("_id", ASCENDING)]


def _filter(selection: Any) -> dict[str, Any]:
    from khala.store.mongodb import mongo_filter  # the one life cycle → Mongo translator

    return mongo_filter(selection)


class MongoJobs:
    _tasks: Collection[dict[str, Any]]
    _jobs: Collection[dict[str, Any]]

    # ------------------------------------------------------------------ fair dispatch

    def _fair_heads(self, count: int, extra: dict[str, Any] | None = None
                    ) -> list[dict[str, Any]]:
        """Queued task documents ({_id, attempts}) in khala.dispatch.fair_order, found by
        lookups on the `fair` index (per priority level, per user, a user's oldest `count`).
        `extra` narrows the queued tasks (judging: languages)."""
        queued = {**_filter(lifecycle.QUEUED), **(extra or {})}
        fields = {"user": 1, "priority": 1, "add_time": 1, "attempts": 1}
        # A short queue (the usual case on an idle cluster) is read whole in one query: the
        # candidates are then every queued task, and the lookups below are not needed.
        few = list(self._tasks.find(queued, fields).limit(count + 1))
        if len(few) <= count:
            return self._in_fair_order(few)
        found: list[Candidate] = []
        attempts: dict[str, int] = {}
        level: Any = None
        for _ in range(MAX_LEVELS):
            where = dict(queued) if level is None else {**queued, "priority": {"$lt": level}}
            top = self._tasks.find_one(where, {"priority": 1}, sort=[("priority", DESCENDING)])
            if top is None:
                break
            level = top.get("priority")
            for user in self._users(queued, level):
                docs = self._tasks.find(
                    {**queued, "priority": level, "user": user}, fields,
                ).sort([("add_time", ASCENDING), ("_id", ASCENDING)]).limit(count)
                for d in docs:
                    found.append(Candidate(str(d["_id"]), int(d["user"]),
                                           int(d.get("priority") or 0), d["add_time"]))
                    attempts[str(d["_id"])] = int(d.get("attempts", 0))
            if len(found) >= count or level is None:
                break
        return self._ordered(found, attempts)

    def _in_fair_order(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = [Candidate(str(d["_id"]), int(d["user"]), int(d.get("priority") or 0),
                           d["add_time"]) for d in docs]
        return self._ordered(found, {str(d["_id"]): int(d.get("attempts", 0)) for d in docs})

    def _ordered(self, found: list[Candidate], attempts: dict[str, int]
                 ) -> list[dict[str, Any]]:
        if not found:
            return []
        active: dict[int, int] = {}
        if len({c.user for c in found}) > 1:  # one user's tasks: their order needs no counts
            for d in self._tasks.find(_filter(lifecycle.ACTIVE), {"user": 1}):
                active[int(d["user"])] = active.get(int(d["user"]), 0) + 1
        return [{"_id": ObjectId(c.id), "attempts": attempts[c.id]}
                for c in fair_order(found, active)]

    def _users(self, queued: dict[str, Any], level: Any) -> list[int]:
        users: list[int] = []
        for _ in range(MAX_USERS):
            where = {**queued, "priority": level}
            if users:
                where["user"] = {"$gt": users[-1]}
            doc = self._tasks.find_one(where, {"user": 1}, sort=[("user", ASCENDING)])
            if doc is None:
                break
            users.append(int(doc["user"]))
        return users

    # ------------------------------------------------------------------ jobs

    def create_job(self, name: str, spec: dict[str, Any], state: dict[str, Any]) -> bool:
        try:
            self._jobs.insert_one({"_id": name, "spec": spec, "state": state, "version": 0})
        except DuplicateKeyError:
            return False
        return True

    def job(self, name: str) -> StoredJob | None:
        doc = self._jobs.find_one({"_id": name})
        return None if doc is None else _job(doc)

    def jobs(self) -> list[StoredJob]:
        return [_job(d) for d in self._jobs.find({}).sort("_id", ASCENDING)]

    def save_job(self, name: str, version: int, state: dict[str, Any]) -> bool:
        outcome = self._jobs.update_one(
            {"_id": name, "version": version}, {"$set": {"state": state, "version": version + 1}}
        )
        return outcome.matched_count == 1

    def delete_job(self, name: str, version: int) -> bool:
        return self._jobs.delete_one({"_id": name, "version": version}).deleted_count == 1


def _job(doc: dict[str, Any]) -> StoredJob:
    return StoredJob(str(doc["_id"]), dict(doc["spec"]), dict(doc["state"]), int(doc["version"]))
