"""Task ↔ plain document, shared by the store backends. Pure functions."""

from __future__ import annotations

import base64
import json
from collections.abc import Hashable
from dataclasses import asdict, fields
from functools import cache
from typing import Any, TypeVar, cast

from khala.model import (
    Case,
    CaseResult,
    Checker,
    Compare,
    Compile,
    Execute,
    Judgement,
    Language,
    Reason,
    Result,
    Rusage,
    Status,
    StepOptions,
    StepReport,
    Task,
    TaskBrief,
    compare_mode_of,
    reason_of,
    verdict_of,
)

T = TypeVar("T")


@cache
def _field_names(cls: Any) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def _known(cls: type[T], doc: dict[str, Any]) -> T:
    """`cls(**doc)` without the keys `cls` does not know: a field stored by a newer version
    of Khala (a rolling upgrade, or a downgrade) is skipped, not an error on every read."""
    names = _field_names(cast(Hashable, cls))
    return cls(**{k: v for k, v in doc.items() if k in names})


def spec_to_json(task: Task) -> str:
    """The compile/execute settings of a task, without the two zip payloads, and its webhook
    URL (stored with the task, so a keyed re-post compares it with the task's own)."""
    compile_part = asdict(task.compile)
    execute_part = asdict(task.execute)
    compile_part.pop("source")
    execute_part.pop("data")
    spec: dict[str, Any] = {"compile": compile_part, "execute": execute_part}
    if task.callback_url is not None:
        spec["callback_url"] = task.callback_url
    return json.dumps(spec)


def spec_from_json(text: str, source: bytes, data: bytes) -> tuple[Compile, Execute, str | None]:
    """The compile and execute parts and the webhook URL (None: none) of a stored spec."""
    spec = json.loads(text)
    return (compile_from_dict({**spec["compile"], "source": source}),
            execute_from_dict({**spec["execute"], "data": data}), spec.get("callback_url"))


def options_from_dict(doc: dict[str, Any] | None) -> StepOptions:
    """A step's options from a stored document (absent in tasks stored before them)."""
    if not doc:
        return StepOptions()
    options = _known(StepOptions, doc)
    options.env = {str(k): str(v) for k, v in (options.env or {}).items()}
    return options


def compile_from_dict(doc: dict[str, Any]) -> Compile:
    return _known(Compile, {**doc, "options": options_from_dict(doc.get("options"))})


def execute_from_dict(doc: dict[str, Any]) -> Execute:
    """The execute part from a plain document, its judging parts rebuilt."""
    doc = dict(doc)
    doc["options"] = options_from_dict(doc.get("options"))
    doc["cases"] = [_known(Case, c) for c in doc.get("cases") or []]
    compare = doc.get("compare")
    if compare is not None:
        checker = compare.get("checker")
        doc["compare"] = _known(Compare, {
            **compare, "mode": compare_mode_of(compare["mode"]),
            "checker": None if checker is None else _known(Checker, checker)})
    return _known(Execute, doc)


def judgement_from_dict(doc: dict[str, Any] | None) -> Judgement | None:
    if doc is None:
        return None
    cases = [_known(CaseResult, {**c, "verdict": verdict_of(c.get("verdict"))})
             for c in doc.get("cases") or []]
    return _known(Judgement, {**doc, "verdict": verdict_of(doc.get("verdict")), "cases": cases})


OUTPUT_FIELDS = ("compile_output", "compile_error", "execute_output", "execute_error")
BASE64_MARK = "outputs"  # result JSON whose output fields are base64 carries {"outputs": "base64"}


def result_to_dict(result: Result | None) -> dict[str, Any] | None:
    """Outputs stay bytes (BSON binary in MongoDB)."""
    return None if result is None else asdict(result)


def _output(value: Any) -> bytes:
    """A stored output: bytes, or text written before outputs were bytes (UTF-8 then)."""
    if value is None:
        return b""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def result_from_dict(doc: dict[str, Any] | None) -> Result | None:
    if doc is None:
        return None
    doc = dict(doc)
    doc.pop(BASE64_MARK, None)
    for key in OUTPUT_FIELDS:
        doc[key] = _output(doc.get(key))
    for key in ("compile_report", "execute_report"):
        if doc.get(key) is not None:
            doc[key] = _step_report(doc[key])
    doc["judgement"] = judgement_from_dict(doc.get("judgement"))
    return _known(Result, doc)


def _step_report(doc: dict[str, Any]) -> StepReport:
    rusage = doc.get("rusage")
    return _known(StepReport, {**doc, "reason": reason_of(doc.get("reason", Reason.OK)),
                               "rusage": None if rusage is None else _known(Rusage, rusage)})


def key_range(prefix: str) -> tuple[str, str]:
    """The keys starting with `prefix` (keys are ASCII) as a half-open range [low, high)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def result_to_json(result: Result | None) -> str | None:
    """JSON with the outputs base64-encoded (marked, so text from older rows still reads)."""
    doc = result_to_dict(result)
    if doc is None:
        return None
    for key in OUTPUT_FIELDS:
        doc[key] = base64.b64encode(doc[key]).decode("ascii")
    doc[BASE64_MARK] = "base64"
    return json.dumps(doc)


def result_from_json(text: str | None) -> Result | None:
    if text is None:
        return None
    doc = json.loads(text)
    if doc.get(BASE64_MARK) == "base64":
        for key in OUTPUT_FIELDS:
            doc[key] = base64.b64decode(doc.get(key) or "")
    return result_from_dict(doc)


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


def languages_to_json(languages: list[Language]) -> str:
    return json.dumps([[x.name, x.version] for x in languages])


def languages_from_json(text: str | None) -> list[Language]:
    try:
        return [Language(str(n), str(v)) for n, v in json.loads(text or "[]")]
    except (ValueError, TypeError):
        return []


def merge_languages(per_executor: list[list[Language]],
                    names: list[str] | None = None) -> list[Language]:
    """The languages of several executors as one listing (Store.languages); `names`, when
    given, are the executors' names in the same order (each language lists its own)."""
    versions: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    offered_by: dict[str, list[str]] = {}
    for index, languages in enumerate(per_executor):
        for x in languages:
            counts[x.name] = counts.get(x.name, 0) + 1
            if names is not None:
                offered_by.setdefault(x.name, []).append(names[index])
            seen = versions.setdefault(x.name, [])
            if x.version not in seen:
                seen.append(x.version)
    return [Language(name, " | ".join(sorted(versions[name])), counts[name],
                     sorted(offered_by.get(name, [])))
            for name in sorted(counts)]
