"""The MongoDB side of jobs: the jobs collection and the candidate gathering of fair
dispatch. Mixed into MongoStore (which provides the collections).

    jobs: {_id: "<name>", spec: {…}, state: {…}, version}

Saving and deleting a job are compare-and-set on its version (holding the job's document,
MongoStore._exclusive).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from khala.rules import lifecycle
from khala.rules.dispatch import HEAD_SCAN, MAX_LEVELS, MAX_USERS, Candidate, fair_order, head_users
from khala.store.base import StoredJob
from khala.store.mongo.docs import job_key, mongo_filter

FAIR_INDEX = [("done", ASCENDING), ("executor", ASCENDING), ("priority", DESCENDING),
              ("user", ASCENDING), ("add_time", ASCENDING), ("_id", ASCENDING)]
# A level's queue in time order (khala.rules.dispatch.head_users).
HEAD_INDEX = [("done", ASCENDING), ("executor", ASCENDING), ("priority", DESCENDING),
              ("add_time", ASCENDING), ("_id", ASCENDING)]


class MongoJobs:
    _tasks: Collection[dict[str, Any]]
    _jobs: Collection[dict[str, Any]]

    def _exclusive(self, key: str, insist: bool = True) -> AbstractContextManager[None]:
        raise NotImplementedError  # MongoStore's

    # ------------------------------------------------------------------ fair dispatch

    def _fair_heads(self, count: int, extra: dict[str, Any] | None = None
                    ) -> list[dict[str, Any]]:
        """Queued task documents ({_id, attempts}) in khala.rules.dispatch.fair_order, found by
        index lookups: per priority level, the users that can take the first places (one read
        of the level's queue in time order, the `head` index; a skip scan on `fair` when a few
        users fill it), a chosen user's oldest `count` (`fair`).
        `extra` narrows the queued tasks (judging: languages)."""
        queued = {**mongo_filter(lifecycle.QUEUED), **(extra or {})}
        fields = {"user": 1, "priority": 1, "add_time": 1, "attempts": 1}
        # A short queue (the usual case on an idle cluster) is read whole in one query: the
        # candidates are then every queued task, and the lookups below are not needed.
        few = list(self._tasks.find(queued, fields).limit(count + 1))
        if len(few) <= count:
            return self._in_fair_order(few)
        active = self._active()
        found: list[Candidate] = []
        attempts: dict[str, int] = {}
        level: Any = None
        for _ in range(MAX_LEVELS):
            where = dict(queued) if level is None else {**queued, "priority": {"$lt": level}}
            top = self._tasks.find_one(where, {"priority": 1}, sort=[("priority", DESCENDING)])
            if top is None:
                break
            level = top.get("priority")
            for user in self._level_users(queued, level, count - len(found), active):
                docs = self._tasks.find(
                    {**queued, "priority": level, "user": user}, fields,
                ).sort([("add_time", ASCENDING), ("_id", ASCENDING)]).limit(count)
                for d in docs:
                    found.append(Candidate(str(d["_id"]), int(d["user"]),
                                           int(d.get("priority") or 0), d["add_time"]))
                    attempts[str(d["_id"])] = int(d.get("attempts", 0))
            if len(found) >= count or level is None:
                break
        return self._ordered(found, attempts, active)

    def _active(self) -> dict[int, int]:
        """Tasks each user has running (khala.rules.dispatch.fair_order)."""
        active: dict[int, int] = {}
        for d in self._tasks.find(mongo_filter(lifecycle.ACTIVE), {"user": 1}):
            active[int(d["user"])] = active.get(int(d["user"]), 0) + 1
        return active

    def _in_fair_order(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = [Candidate(str(d["_id"]), int(d["user"]), int(d.get("priority") or 0),
                           d["add_time"]) for d in docs]
        return self._ordered(found, {str(d["_id"]): int(d.get("attempts", 0)) for d in docs})

    def _ordered(self, found: list[Candidate], attempts: dict[str, int],
                 active: dict[int, int] | None = None) -> list[dict[str, Any]]:
        if not found:
            return []
        if active is None:  # one user's tasks: their order needs no counts
            active = self._active() if len({c.user for c in found}) > 1 else {}
        return [{"_id": ObjectId(c.id), "attempts": attempts[c.id]}
                for c in fair_order(found, active)]

    def _level_users(self, queued: dict[str, Any], level: Any, want: int,
                     active: dict[int, int]) -> list[int]:
        """head_users from the level's oldest queued tasks, else every user queued there."""
        limit = HEAD_SCAN * want + len(active)
        docs = list(self._tasks.find({**queued, "priority": level}, {"user": 1})
                    .sort([("add_time", ASCENDING), ("_id", ASCENDING)]).limit(limit))
        users = head_users((int(d["user"]) for d in docs), active, want,
                           complete=len(docs) < limit)
        return self._users(queued, level) if users is None else users

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

    # The version in the filter makes these compare-and-set on MongoDB; FerretDB writes by _id
    # after its own read, so there holding the document makes them so (mongo/ferret.py).

    def save_job(self, name: str, version: int, state: dict[str, Any],
                 spec: dict[str, Any] | None = None) -> bool:
        fields: dict[str, Any] = {"state": state, "version": version + 1}
        if spec is not None:
            fields["spec"] = spec
        with self._exclusive(job_key(name)):
            outcome = self._jobs.update_one({"_id": name, "version": version},
                                            {"$set": fields})
        return outcome.matched_count == 1

    def delete_job(self, name: str, version: int) -> bool:
        with self._exclusive(job_key(name)):
            return self._jobs.delete_one({"_id": name, "version": version}).deleted_count == 1


def _job(doc: dict[str, Any]) -> StoredJob:
    return StoredJob(str(doc["_id"]), dict(doc["spec"]), dict(doc["state"]), int(doc["version"]))
