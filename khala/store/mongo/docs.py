"""MongoDB store documents: task documents ↔ Task, searches, and state-machine conditions (the
task life cycle, webhook deliveries) as Mongo filters. Pure functions, no IO."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from enum import IntEnum
from typing import Any

from bson import ObjectId

from khala.model import SearchQuery, Task, TaskBrief
from khala.rules import lifecycle
from khala.rules.states import AtMost, Bound, Cond, Eq, NotNone, OneOf, check_fields
from khala.store.codec import (
    brief_from_row,
    compile_from_dict,
    execute_from_dict,
    result_from_dict,
    result_to_dict,
)

#: The fields a task's brief reads, and the order the queue is taken in.
BRIEF_FIELDS = {"user": 1, "add_time": 1, "done": 1, "status": 1, "executor": 1, "report_time": 1}
QUEUE_ORDER = [("add_time", 1), ("_id", 1)]
LANGUAGE_KEYS = ("name", "version", "image", "source", "time_factor")  # a language document
#: A lean get's projection (Store.get): the cases without their texts, the result without its
#: standard outputs.
LEAN_PROJECTION = {"execute.cases.input": 0, "execute.cases.standard": 0,
                   "result.compile_output": 0, "result.execute_output": 0}


def oid_of(task_id: str) -> ObjectId | None:
    """The ObjectId a task id names, or None when it is malformed."""
    return ObjectId(task_id) if ObjectId.is_valid(task_id) else None


def task_key(task_id: Any) -> str:
    """What names a task's document when a write must hold it (MongoStore._exclusive)."""
    return str(task_id)


def job_key(name: str) -> str:
    return f"job:{name}"


def executor_key(hostname: str) -> str:
    return f"executor:{hostname}"


def webhook_key(task_id: str) -> str:
    return f"webhook:{task_id}"


# ----------------------------------------------------------------------------- life cycle → Mongo


def mongo_value(name: str, value: Any) -> Any:
    """A life-cycle field's value as the task document holds it."""
    if name == "result":
        return result_to_dict(value)
    if isinstance(value, IntEnum):
        return int(value)
    return value


def mongo_filter(where: Mapping[str, Cond],
                 fields: frozenset[str] = lifecycle.FIELDS) -> dict[str, Any]:
    """Bound conditions (on `fields`: the task life cycle's unless named) → a Mongo filter."""
    check_fields(where, fields, "state")
    query: dict[str, Any] = {}
    for name, cond in where.items():
        if isinstance(cond, Eq):
            query[name] = mongo_value(name, cond.value)
        elif isinstance(cond, OneOf):
            query[name] = {"$in": sorted(mongo_value(name, v) for v in cond.values)}
        elif isinstance(cond, NotNone):
            query[name] = {"$ne": None}
        else:
            query[name] = {"$lte" if isinstance(cond, AtMost) else "$lt":
                           mongo_value(name, cond.value)}
    return query


def mongo_any(alternatives: tuple[Bound, ...], fields: frozenset[str]) -> dict[str, Any]:
    """Documents meeting any of the alternatives' conditions → one Mongo filter."""
    return {"$or": [mongo_filter(b.where, fields) for b in alternatives]}


def mongo_set(sets: Mapping[str, Any],
              fields: frozenset[str] = lifecycle.FIELDS) -> dict[str, Any]:
    """Bound changes → the fields of a Mongo $set."""
    check_fields(sets, fields, "state")
    return {name: mongo_value(name, value) for name, value in sets.items()}


# ----------------------------------------------------------------------------- documents


def search_filter(query: SearchQuery) -> dict[str, Any] | None:
    """The Mongo filter of a search, or None when it cannot match anything (bad id)."""
    where: dict[str, Any] = {}
    if query.id is not None:
        oid = oid_of(query.id)
        if oid is None:
            return None
        where["_id"] = oid
    if query.user is not None:
        where["user"] = query.user
    times: dict[str, str] = {}
    if query.start_time is not None:
        times["$gte"] = query.start_time
    if query.end_time is not None:
        times["$lte"] = query.end_time
    if times:
        where["add_time"] = times
    return where


def language_filter(languages: frozenset[str] | None) -> dict[str, Any]:
    """Tasks whose language, checker language and interactor language (their own, or their
    stored problem's) are unset, empty or among `languages`."""
    if languages is None:
        return {}
    names: list[Any] = [None, "", *sorted(languages)]
    return {"compile.language": {"$in": names},
            "execute.compare.checker.language": {"$in": names},
            "execute.interactor.language": {"$in": names},
            "execute.problem.checker": {"$in": names},
            "execute.problem.interactor": {"$in": names}}


def assign_filter(languages: frozenset[str] | None, images: bool) -> dict[str, Any]:
    """`language_filter`, and without `images` (an executor that cannot run steps in images)
    only tasks neither of whose steps names one."""
    found = language_filter(languages)
    if not images:
        found.update({"compile.image": None, "execute.image": None})
    return found


def task_to_doc(oid: ObjectId, task: Task) -> dict[str, Any]:
    return {
        "_id": oid,
        "user": task.user,
        "add_time": task.add_time,
        "done": bool(task.done),
        "status": int(task.status),
        "executor": task.executor,
        "report_time": task.report_time,
        "attempts": 0,  # times assigned; names the claim of the next assignment
        "compile": asdict(task.compile),  # bytes are stored as BSON binary
        "execute": asdict(task.execute),
        "result": result_to_dict(task.result),
        "key": task.key,
        "priority": int(task.priority),
        "callback_url": task.callback_url,  # a keyed re-post compares it with the task's own
    }


def doc_brief(doc: Mapping[str, Any]) -> TaskBrief:
    brief = brief_from_row({**doc, "id": str(doc["_id"])})
    brief.key = doc.get("key")
    return brief


def task_from_doc(doc: Mapping[str, Any]) -> Task:
    brief = doc_brief(doc)
    compile_part = dict(doc["compile"])
    execute_part = dict(doc["execute"])
    compile_part["source"] = bytes(compile_part.get("source") or b"")
    execute_part["data"] = bytes(execute_part.get("data") or b"")
    return Task(
        id=brief.id,
        user=brief.user,
        compile=compile_from_dict(compile_part),
        execute=execute_from_dict(execute_part),
        add_time=brief.add_time,
        done=brief.done,
        status=brief.status,
        executor=brief.executor,
        report_time=brief.report_time,
        result=result_from_dict(doc.get("result")),
        key=doc.get("key"),
        priority=int(doc.get("priority") or 0),
        callback_url=doc.get("callback_url"),
    )
