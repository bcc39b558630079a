"""Task ↔ plain document, shared by the store backends. Pure functions."""

from __future__ import annotations

import base64
import json
from collections.abc import Hashable
from dataclasses import asdict, fields, replace
from functools import cache
from typing import Any, TypeVar, cast

from khala.files.refs import FileRef
from khala.model import (
    OUTPUT_FIELDS,
    Case,
    CaseResult,
    Checker,
    Compare,
    Compile,
    Execute,
    Group,
    GroupResult,
    ImageRef,
    Interactor,
    Judged,
    Judgement,
    Language,
    OutputFile,
    ProblemRef,
    Reason,
    Result,
    Rusage,
    Status,
    StepOptions,
    StepReport,
    Task,
    TaskBrief,
    compare_mode_of,
    group_policy_of,
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


def without_body(task: Task) -> Task:
    """`task` without its body — the two zips, the execute input and standard, each case's —
    for a store that keeps the body apart (pack_texts) from the rest."""
    e = task.execute
    return replace(task, compile=replace(task.compile, source=b""), execute=replace(
        e, data=b"", input="", standard="",
        cases=[replace(c, input="", standard="") for c in e.cases]))


def pack_parts(parts: list[bytes]) -> bytes:
    """Byte strings in one: a JSON list of their lengths, a newline, then the parts one after
    another. Read back by slicing (unpack_parts), with none of JSON's escaping of each newline
    of a megabyte of text, or base64's third more (their encoding and decoding took longer than
    everything else a find does)."""
    return b"".join([json.dumps([len(p) for p in parts]).encode(), b"\n", *parts])


def unpack_parts(packed: bytes, count: int) -> list[bytes]:
    """The `count` parts pack_parts put in `packed`; ValueError if it holds another number."""
    head, _, body = bytes(packed).partition(b"\n")
    lengths = json.loads(head)
    if len(lengths) != count:
        raise ValueError(f"{len(lengths)} parts stored where {count} are read")
    parts, at = [], 0
    for length in lengths:
        parts.append(body[at:at + length])
        at += length
    return parts


def pack_texts(task: Task) -> tuple[bytes, bytes]:
    """The texts of a task's body (without_body), its bulk, in two (pack_parts of their
    UTF-8): the execute input and standard, and every case's input and standard (kept apart:
    a lean read shows the first and skips the second)."""
    e = task.execute
    return (pack_parts([e.input.encode(), e.standard.encode()]),
            pack_parts([t.encode() for c in e.cases for t in (c.input, c.standard)]))


def with_texts(execute: Execute, io: bytes, cases: bytes | None) -> Execute:
    """`execute` (stored without its body) with the texts of pack_texts; the cases' left empty
    when `cases` is None."""
    given, want = (t.decode() for t in unpack_parts(io, 2))
    execute = replace(execute, input=given, standard=want)
    if cases is None:
        return execute
    texts = [t.decode() for t in unpack_parts(cases, 2 * len(execute.cases))]
    return replace(execute, cases=[
        replace(case, input=texts[2 * i], standard=texts[2 * i + 1])
        for i, case in enumerate(execute.cases)])


#: The result's streams a store may keep apart from its JSON (the steps' standard outputs: a
#: lean read leaves them out, and they can be megabytes; the standard errors stay in it).
APART = ("compile_output", "execute_output")


def pack_outputs(result: Result | None) -> bytes | None:
    """A result's APART streams in one (pack_parts); None for no result."""
    return None if result is None else pack_parts([result.compile_output,
                                                   result.execute_output])


def with_outputs(result: Result, packed: bytes) -> Result:
    """`result` (read from JSON written without its APART streams) with pack_outputs'."""
    compile_output, execute_output = unpack_parts(packed, len(APART))
    return replace(result, compile_output=compile_output, execute_output=execute_output)


def task_needs(task: Task) -> tuple[str, int]:
    """What assigning `task` asks of an executor (khala/store/sqlite/translate.py): the
    languages its steps and jury programs run with (a sorted JSON array) and 1 when a step
    names an image."""
    c, e = task.compile, task.execute
    checker = e.compare.checker if e.compare is not None else None
    names = {c.language, checker.language if checker is not None else "",
             e.interactor.language if e.interactor is not None else "",
             e.problem.checker if e.problem is not None else "",
             e.problem.interactor if e.problem is not None else ""}
    return json.dumps(sorted(names - {""})), int(c.image is not None or e.image is not None)


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
    return _known(Compile, {**doc, "options": options_from_dict(doc.get("options")),
                            "image": image_from_dict(doc.get("image"))})


def image_from_dict(doc: dict[str, Any] | None) -> ImageRef | None:
    return None if doc is None else _known(ImageRef, doc)


def execute_from_dict(doc: dict[str, Any]) -> Execute:
    """The execute part from a plain document, its judging parts rebuilt."""
    doc = dict(doc)
    doc["options"] = options_from_dict(doc.get("options"))
    doc["cases"] = [_known(Case, c) for c in doc.get("cases") or []]
    doc["groups"] = [_known(Group, {**g, "policy": group_policy_of(g.get("policy") or "sum"),
                                    "deps": list(g.get("deps") or [])})
                     for g in doc.get("groups") or []]
    interactor = doc.get("interactor")
    if interactor is not None:
        doc["interactor"] = _known(Interactor, interactor)
    doc["outputs"] = list(doc.get("outputs") or [])
    problem = doc.get("problem")
    if problem is not None:
        doc["problem"] = _known(ProblemRef, problem)
    doc["image"] = image_from_dict(doc.get("image"))
    compare = doc.get("compare")
    if compare is not None:
        checker = compare.get("checker")
        doc["compare"] = _known(Compare, {
            **compare, "mode": compare_mode_of(compare["mode"]),
            "checker": None if checker is None else _known(Checker, checker)})
    return _known(Execute, doc)


def files_from_list(docs: list[dict[str, Any]] | None, b64: bool = False) -> list[OutputFile]:
    """Files out from plain documents (`b64`: their content is base64 text, as in JSON)."""
    found = []
    for doc in docs or []:
        content = doc.get("content") or b""
        if b64:
            content = base64.b64decode(content)
        found.append(_known(OutputFile, {**doc, "content": _output(content)}))
    return found


def judgement_from_dict(doc: dict[str, Any] | None, b64: bool = False) -> Judgement | None:
    if doc is None:
        return None
    cases = [_known(CaseResult, {**c, "verdict": verdict_of(c.get("verdict")),
                                 "files": files_from_list(c.get("files"), b64)})
             for c in doc.get("cases") or []]
    groups = [_known(GroupResult, {**g, "verdict": verdict_of(g.get("verdict")),
                                   "cases": list(g.get("cases") or [])})
              for g in doc.get("groups") or []]
    return _known(Judgement, {**doc, "verdict": verdict_of(doc.get("verdict")), "cases": cases,
                              "groups": groups})


BASE64_MARK = "outputs"  # result JSON whose output fields are base64 carries {"outputs": "base64"}


def result_to_dict(result: Result | None) -> dict[str, Any] | None:
    """Outputs stay bytes (BSON binary in MongoDB)."""
    return None if result is None else asdict(result)


def _output(value: Any) -> bytes:
    """A stored output: bytes, or text written before outputs were bytes (UTF-8 then)."""
    if value is None:
        return b""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def result_from_dict(doc: dict[str, Any] | None, b64: bool = False) -> Result | None:
    """`b64`: the files' contents are base64 text (JSON); the streams are decoded already."""
    if doc is None:
        return None
    doc = dict(doc)
    doc.pop(BASE64_MARK, None)
    for key in OUTPUT_FIELDS:
        doc[key] = _output(doc.get(key))
    for key in ("compile_report", "execute_report"):
        if doc.get(key) is not None:
            doc[key] = _step_report(doc[key])
    doc["judgement"] = judgement_from_dict(doc.get("judgement"), b64)
    doc["files"] = files_from_list(doc.get("files"), b64)
    doc["stored"] = {name: FileRef(str(ref["sha256"]), int(ref["size"]))
                     for name, ref in (doc.get("stored") or {}).items()}
    return _known(Result, doc)


def _step_report(doc: dict[str, Any]) -> StepReport:
    rusage = doc.get("rusage")
    return _known(StepReport, {**doc, "reason": reason_of(doc.get("reason", Reason.OK)),
                               "rusage": None if rusage is None else _known(Rusage, rusage)})


def key_range(prefix: str) -> tuple[str, str]:
    """The keys starting with `prefix` (keys are ASCII) as a half-open range [low, high)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def result_to_json(result: Result | None, apart: bool = False) -> str | None:
    """JSON with the outputs base64-encoded (marked, so text from older rows still reads);
    with `apart`, the APART streams empty (kept apart: pack_outputs)."""
    doc = result_to_dict(result)
    if doc is None:
        return None
    for key in OUTPUT_FIELDS:
        doc[key] = "" if apart and key in APART else base64.b64encode(doc[key]).decode("ascii")
    judgement = doc.get("judgement") or {}
    for files in [doc.get("files") or [], *((c.get("files") or [])
                                             for c in judgement.get("cases") or [])]:
        for f in files:
            f["content"] = base64.b64encode(f["content"]).decode("ascii")
    doc[BASE64_MARK] = "base64"
    return json.dumps(doc)


def result_from_json(text: str | None) -> Result | None:
    if text is None:
        return None
    doc = json.loads(text)
    b64 = doc.get(BASE64_MARK) == "base64"
    if b64:
        for key in OUTPUT_FIELDS:
            doc[key] = base64.b64decode(doc.get(key) or "")
    return result_from_dict(doc, b64)


def bare_judgement(judgement: Judgement | None) -> Judgement | None:
    """A judgement as a task's history keeps it: verdicts, scores, usage and messages, without
    the cases' outputs and files."""
    if judgement is None:
        return None
    return replace(judgement, cases=[replace(c, output="", error="", files=[])
                                     for c in judgement.cases])


def judged_to_dict(entry: Judged) -> dict[str, Any]:
    """JSON-able (no bytes: the judgement is bare)."""
    doc = asdict(replace(entry, judgement=bare_judgement(entry.judgement)))
    doc["status"] = int(entry.status)
    return doc


def judged_from_dict(doc: dict[str, Any]) -> Judged:
    return _known(Judged, {**doc, "status": Status(doc.get("status", Status.UNKNOWN_ERROR)),
                           "judgement": judgement_from_dict(doc.get("judgement"))})


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
    return json.dumps([language_row(x) for x in languages])


def language_row(x: Language) -> list[Any]:
    return [x.name, x.version, x.image, x.source, x.time_factor]


def language_of_row(row: list[Any]) -> Language:
    """A stored language: [name, version] as older executors' records hold it, or with its
    image, source file and time factor."""
    name, version, *rest = row
    image, source, factor = (list(rest) + ["", "", 1.0])[:3]
    return Language(str(name), str(version), image=str(image or ""), source=str(source or ""),
                    time_factor=float(factor) if isinstance(factor, (int, float)) else 1.0)


def languages_from_json(text: str | None) -> list[Language]:
    try:
        return [language_of_row(row) for row in json.loads(text or "[]")]
    except (ValueError, TypeError):
        return []


def merge_languages(per_executor: list[list[Language]],
                    names: list[str] | None = None) -> list[Language]:
    """The languages of several executors as one listing (Store.languages), one entry per
    language and image (the host's: image ""); `names`, when given, are the executors' names
    in the same order (each language lists its own)."""
    merged: dict[tuple[str, str], Language] = {}
    versions: dict[tuple[str, str], list[str]] = {}
    for index, languages in enumerate(per_executor):
        for x in languages:
            key = (x.name, x.image)
            entry = merged.setdefault(key, Language(x.name, image=x.image, source=x.source,
                                                    time_factor=x.time_factor))
            entry.executors += 1
            if names is not None:
                entry.executor_names.append(names[index])
            seen = versions.setdefault(key, [])
            if x.version not in seen:
                seen.append(x.version)
    for key, entry in merged.items():
        entry.version = " | ".join(sorted(versions[key]))
        entry.executor_names.sort()
    return [merged[key] for key in sorted(merged)]
