"""Task ↔ plain document, shared by the store backends. Pure functions."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from khala.model import (
    Compile,
    Execute,
    Reason,
    Result,
    Status,
    StepReport,
    Task,
    TaskBrief,
    reason_of,
)


def spec_to_json(task: Task) -> str:
    """The compile/execute settings of a task, without the two zip payloads."""
    compile_part = asdict(task.compile)
    execute_part = asdict(task.execute)
    compile_part.pop("source")
    execute_part.pop("data")
    return json.dumps({"compile": compile_part, "execute": execute_part})


def spec_from_json(text: str, source: bytes, data: bytes) -> tuple[Compile, Execute]:
    spec = json.loads(text)
    return Compile(source=source, **spec["compile"]), Execute(data=data, **spec["execute"])


def result_to_dict(result: Result | None) -> dict[str, Any] | None:
    return None if result is None else asdict(result)


def result_from_dict(doc: dict[str, Any] | None) -> Result | None:
    if doc is None:
        return None
    doc = dict(doc)
    for key in ("compile_report", "execute_report"):
        if doc.get(key) is not None:
            doc[key] = _step_report(doc[key])
    return Result(**doc)


def _step_report(doc: dict[str, Any]) -> StepReport:
    return StepReport(**{**doc, "reason": reason_of(doc.get("reason", Reason.OK))})


def result_to_json(result: Result | None) -> str | None:
    doc = result_to_dict(result)
    return None if doc is None else json.dumps(doc)


def result_from_json(text: str | None) -> Result | None:
    return None if text is None else result_from_dict(json.loads(text))


def brief_from_row(row: Any) -> TaskBrief:
    """Anything indexable by the brief's field names (sqlite3.Row, dict) → TaskBrief."""
    return TaskBrief(
        id=row["id"],
        user=row["user"],
        add_time=row["add_time"] or "",
        done=bool(row["done"]),
        status=Status(row["status"]),
        executor=row["executor"],
        report_time=row["report_time"] or "",
    )
