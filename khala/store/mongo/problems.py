"""The MongoDB backend's problems (khala/store/problems.py), and the task side of problems as a
mixin of MongoStore.

Documents:
    problems:          {_id: problem id, title, created, next_version, deleting}
    problem_versions:  {_id: "<problem>:<version>", problem, version, spec, size, created,
                        summary, deleting}
    rejudges:          {_id: rejudge id, problem, created, …Rejudge's saved fields}
    task_history:      {_id: "<task>:<rejudge>", task, at, entry}

No write here needs two documents to change together: a version's number is claimed by the
insert of its unique `_id` (a racer takes the next), a problem is deleted only after it is
marked and found without versions, and a new version checks its problem is not marked after
its insert (so one of two racers always sees the other).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from khala.files.refs import FileRef
from khala.model import REJUDGE_PRIORITY, Judged, ProblemRef, Status
from khala.problems.model import (
    ProblemInfo,
    Rejudge,
    RejudgeCounts,
    VerdictChange,
    VersionInfo,
)
from khala.rules import lifecycle
from khala.store.codec import judged_from_dict, judged_to_dict
from khala.store.mongo.docs import mongo_filter, mongo_set, oid_of, task_key
from khala.store.problems import ProblemStore

REJUDGE_FIELDS = ("version", "from_version", "user", "verdict", "state", "cursor", "total",
                  "detail")


def _version(doc: dict[str, Any]) -> VersionInfo:
    return VersionInfo(problem=doc["problem"], version=int(doc["version"]),
                       spec=FileRef(doc["spec"], int(doc["size"])), created=doc["created"],
                       summary=dict(doc.get("summary") or {}),
                       deleting=bool(doc.get("deleting")))


def _rejudge(doc: dict[str, Any]) -> Rejudge:
    return Rejudge(problem=doc["problem"], id=doc["_id"], created=doc["created"],
                   **{k: doc[k] for k in REJUDGE_FIELDS if k in doc})


class MongoProblems(ProblemStore):
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._problems = db["problems"]
        self._versions = db["problem_versions"]
        self._rejudges = db["rejudges"]
        self._versions.create_index([("problem", ASCENDING), ("version", ASCENDING)],
                                    name="problem_version")
        self._rejudges.create_index([("problem", ASCENDING), ("created", ASCENDING)],
                                    name="problem_created")

    def create(self, problem: str, title: str, now: str) -> bool:
        try:
            self._problems.insert_one({"_id": problem, "title": title, "created": now,
                                       "next_version": 1, "deleting": False})
        except DuplicateKeyError:
            return False
        return True

    def retitle(self, problem: str, title: str) -> bool:
        return self._problems.update_one({"_id": problem},
                                         {"$set": {"title": title}}).matched_count == 1

    def _info(self, doc: dict[str, Any]) -> ProblemInfo:
        versions = self._versions.find({"problem": doc["_id"]}).sort("version", ASCENDING)
        return ProblemInfo(id=doc["_id"], title=doc.get("title", ""),
                           created=doc.get("created", ""), versions=[_version(v) for v in versions])

    def get(self, problem: str) -> ProblemInfo | None:
        doc = self._problems.find_one({"_id": problem})
        return None if doc is None else self._info(doc)

    def all(self) -> list[ProblemInfo]:
        return [self._info(d) for d in self._problems.find({}).sort("_id", ASCENDING)]

    def add_version(self, problem: str, spec: FileRef, summary: dict[str, Any],
                    now: str) -> int:
        doc = self._problems.find_one({"_id": problem})
        if doc is None or doc.get("deleting"):
            raise KeyError(problem)
        number = int(doc.get("next_version") or 1)
        while True:
            try:
                self._versions.insert_one({
                    "_id": f"{problem}:{number}", "problem": problem, "version": number,
                    "spec": spec.sha256, "size": spec.size, "created": now,
                    "summary": summary, "deleting": False})
                break
            except DuplicateKeyError:
                number += 1  # a racer took it, or it was given before
        self._problems.update_one({"_id": problem}, {"$max": {"next_version": number + 1}})
        after = self._problems.find_one({"_id": problem}, {"deleting": 1})
        if after is None or after.get("deleting"):  # deleted meanwhile: this version goes too
            self._versions.delete_one({"_id": f"{problem}:{number}"})
            raise KeyError(problem)
        return number

    def version(self, problem: str, version: int) -> VersionInfo | None:
        doc = self._versions.find_one({"_id": f"{problem}:{version}"})
        return None if doc is None else _version(doc)

    def mark_version(self, problem: str, version: int, deleting: bool) -> bool:
        return self._versions.update_one({"_id": f"{problem}:{version}"},
                                         {"$set": {"deleting": deleting}}).matched_count == 1

    def delete_version(self, problem: str, version: int) -> bool:
        return self._versions.delete_one({"_id": f"{problem}:{version}"}).deleted_count == 1

    def delete(self, problem: str) -> bool:
        if self._problems.update_one({"_id": problem},
                                     {"$set": {"deleting": True}}).matched_count != 1:
            return False
        if self._versions.find_one({"problem": problem}, {"_id": 1}) is not None:
            self._problems.update_one({"_id": problem}, {"$set": {"deleting": False}})
            return False
        return self._problems.delete_one({"_id": problem}).deleted_count == 1

    # ------------------------------------------------------------------ rejudges

    def add_rejudge(self, rejudge: Rejudge) -> None:
        self._rejudges.insert_one({"_id": rejudge.id, "problem": rejudge.problem,
                                   "created": rejudge.created, **_saved(rejudge)})

    def rejudge(self, rejudge_id: str) -> Rejudge | None:
        doc = self._rejudges.find_one({"_id": rejudge_id})
        return None if doc is None else _rejudge(doc)

    def rejudges(self, problem: str | None = None) -> list[Rejudge]:
        where = {} if problem is None else {"problem": problem}
        cursor = self._rejudges.find(where).sort([("created", ASCENDING), ("_id", ASCENDING)])
        return [_rejudge(d) for d in cursor]

    def save_rejudge(self, rejudge: Rejudge) -> None:
        self._rejudges.update_one({"_id": rejudge.id}, {"$set": _saved(rejudge)})


def _saved(rejudge: Rejudge) -> dict[str, Any]:
    return {k: getattr(rejudge, k) for k in REJUDGE_FIELDS}


class MongoProblemTasks:
    """MongoStore's problem methods (khala/store/base.py, "problems")."""

    _tasks: Any
    _history: Any

    def _exclusive(self, key: str, insist: bool = True) -> AbstractContextManager[None]:
        raise NotImplementedError  # MongoStore's

    def _problem_indexes(self) -> None:
        self._tasks.create_index([("execute.problem.id", ASCENDING), ("_id", ASCENDING)],
                                 name="problem")
        self._tasks.create_index([("rejudge", ASCENDING), ("done", ASCENDING)], name="rejudge")
        self._history.create_index([("task", ASCENDING), ("at", ASCENDING)], name="task")

    def problem_named(self, problem: str, version: int | None = None) -> bool:
        where: dict[str, Any] = {"execute.problem.id": problem}
        if version is not None:
            where["execute.problem.judged"] = version
        return self._tasks.find_one(where, {"_id": 1}) is not None

    def problem_tasks(self, problem: str, after: str, limit: int,
                      version: int | None = None, user: int | None = None,
                      verdict: str | None = None) -> list[str]:
        where: dict[str, Any] = {"execute.problem.id": problem,
                                 **mongo_filter(lifecycle.JUDGED)}
        start = oid_of(after)
        if start is not None:
            where["_id"] = {"$gt": start}
        for name, value in (("execute.problem.judged", version), ("user", user),
                            ("result.judgement.verdict", verdict)):
            if value is not None:
                where[name] = value
        found = self._tasks.find(where, {"_id": 1}).sort("_id", ASCENDING).limit(int(limit))
        return [str(d["_id"]) for d in found]

    def rejudge_task(self, task_id: str, entry: Judged, problem: ProblemRef, rejudge: str,
                     now: str) -> bool:
        oid = oid_of(task_id)
        if oid is None:
            return False
        change = lifecycle.REJUDGE.bind(now=now)
        key = f"{task_id}:{rejudge}"
        with self._exclusive(task_key(oid)):
            try:  # first: a crash after it leaves an entry the task's next rejudge keeps
                self._history.insert_one({"_id": key, "task": task_id, "at": now,
                                          "entry": judged_to_dict(entry)})
                ours = True
            except DuplicateKeyError:  # this rejudge's earlier attempt kept it already
                ours = False
            sets = {**mongo_set(change.sets), "execute.problem": asdict(problem),
                    "priority": REJUDGE_PRIORITY, "rejudge": rejudge}
            matched = self._tasks.update_one({"_id": oid, **mongo_filter(change.where)},
                                             {"$set": sets}).matched_count == 1
        if not matched and ours:
            self._history.delete_one({"_id": key})
        return matched

    def history(self, task_id: str) -> list[Judged]:
        cursor = self._history.find({"task": task_id}).sort([("at", ASCENDING),
                                                              ("_id", ASCENDING)])
        return [judged_from_dict(d["entry"]) for d in cursor]

    def rejudge_counts(self, rejudge: str) -> RejudgeCounts:
        running = [int(Status.COMPILING), int(Status.RUNNING)]
        count = self._tasks.count_documents
        return RejudgeCounts(
            done=count({"rejudge": rejudge, "done": True}),
            queued=count({"rejudge": rejudge, "done": False, "status": {"$nin": running}}),
            running=count({"rejudge": rejudge, "done": False, "status": {"$in": running}}))

    def rejudge_changes(self, rejudge: str) -> list[VerdictChange]:
        """Read a batch of done tasks at a time, with their history entries of the rejudge
        (keyed "<task>:<rejudge>"): memory bounded by the batch, whatever the rejudge's size."""
        pairs: Counter[tuple[str, str]] = Counter()
        found = self._tasks.find({"rejudge": rejudge, "done": True},
                                 {"_id": 1, "result.judgement.verdict": 1}).sort("_id", ASCENDING)
        for batch in _batches(found, CHANGES_BATCH):
            after = {f"{d['_id']}:{rejudge}": _verdict(d.get("result")) for d in batch}
            for entry in self._history.find({"_id": {"$in": list(after)}},
                                            {"_id": 1, "entry.judgement.verdict": 1}):
                pairs[(_verdict(entry.get("entry")), after[entry["_id"]])] += 1
        return [VerdictChange(b, a, n) for (b, a), n in sorted(pairs.items()) if b != a]


CHANGES_BATCH = 500  # tasks read at once counting a rejudge's verdict changes


def _verdict(doc: Any) -> str:
    """The verdict of a result (or a history entry), "" for none."""
    judgement = doc.get("judgement") if isinstance(doc, dict) else None
    verdict = judgement.get("verdict") if isinstance(judgement, dict) else None
    return str(verdict) if verdict else ""


def _batches(cursor: Any, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for doc in cursor:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
