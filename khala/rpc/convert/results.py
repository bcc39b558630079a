"""What a run produced on the wire: a task's Result with its step reports and judgement."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from khala.files.refs import FileRef, valid_digest
from khala.model import (
    OUTPUT_FIELDS,
    CaseResult,
    GroupResult,
    Judgement,
    OutputFile,
    Result,
    Rusage,
    StepReport,
    reason_of,
    verdict_of,
)
from khala.rpc import judicator_thrift as T
from khala.rpc.convert.text import MAX_TEXT, Inflation, pack, unpack

Raw = Callable[[bytes | None], bytes]
RUSAGE_FIELDS = tuple(f.name for f in fields(Rusage))


def rusage_to_thrift(rusage: Rusage | None) -> Any:
    return None if rusage is None else T.Rusage(**asdict(rusage))


def rusage_from_thrift(rusage: Any) -> Rusage | None:
    """Lenient, as every part of a handed-in result: a missing count reads 0."""
    if rusage is None:
        return None
    counts = {name: int(getattr(rusage, name) or 0) for name in RUSAGE_FIELDS[2:]}
    return Rusage(utime=float(rusage.utime or 0.0), stime=float(rusage.stime or 0.0), **counts)


def step_to_thrift(step: StepReport | None) -> Any:
    if step is None:
        return None
    return T.StepReport(exit_code=step.exit_code, signal=step.signal, core_dump=step.core_dump,
                        time=step.time, wall_time=step.wall_time, memory=step.memory,
                        reason=step.reason, rusage=rusage_to_thrift(step.rusage), pid=step.pid)


def step_from_thrift(step: Any) -> StepReport | None:
    if step is None:
        return None
    return StepReport(exit_code=step.exit_code, signal=step.signal,
                      core_dump=bool(step.core_dump), time=float(step.time or 0.0),
                      wall_time=float(step.wall_time or 0.0), memory=int(step.memory or 0),
                      reason=reason_of(step.reason), rusage=rusage_from_thrift(step.rusage),
                      pid=step.pid)


def files_to_thrift(files: list[OutputFile]) -> Any:
    if not files:
        return None
    return [T.OutputFile(name=f.name, content=pack(f.content), size=f.size,
                         error=f.error or None) for f in files]


def files_from_thrift(files: Any, raw: Raw) -> list[OutputFile]:
    return [OutputFile(name=f.name or "", content=raw(f.content), size=int(f.size or 0),
                       error=f.error or "") for f in files or [] if f is not None]


def case_result_to_thrift(case: CaseResult) -> Any:
    return T.CaseResult(verdict=str(case.verdict), weight=case.weight, time=case.time,
                        wall_time=case.wall_time, memory=case.memory, exit_code=case.exit_code,
                        signal=case.signal, output=pack(case.output), error=pack(case.error),
                        message=case.message, points=case.points,
                        files=files_to_thrift(case.files))


def case_result_from_thrift(case: Any, raw: Raw | None = None) -> CaseResult:
    raw = raw or Inflation(MAX_TEXT).raw
    return CaseResult(verdict=verdict_of(case.verdict), weight=case.weight or 0,
                      time=float(case.time or 0.0), wall_time=float(case.wall_time or 0.0),
                      memory=int(case.memory or 0), exit_code=case.exit_code,
                      signal=case.signal, output=unpack(case.output), error=unpack(case.error),
                      message=case.message or "", points=_number(case.points),
                      files=files_from_thrift(case.files, raw))


def _number(value: Any) -> float:
    """A double from the wire: unset, NaN or infinite read 0 (a score is always finite)."""
    if value is None or not math.isfinite(value):
        return 0.0
    return float(value)


def group_result_to_thrift(group: GroupResult) -> Any:
    return T.GroupResult(name=group.name, verdict=str(group.verdict), score=group.score,
                         max_score=group.max_score, skipped=group.skipped,
                         cases=list(group.cases), message=group.message)


def group_result_from_thrift(group: Any) -> GroupResult:
    return GroupResult(name=group.name or "", verdict=verdict_of(group.verdict),
                       score=_number(group.score), max_score=_number(group.max_score),
                       skipped=bool(group.skipped),
                       cases=[int(i) for i in group.cases or [] if i is not None],
                       message=group.message or "")


def judgement_to_thrift(judgement: Judgement | None) -> Any:
    if judgement is None:
        return None
    j = judgement
    # Fields 2 and 3 are i32 for old readers: rounded down (a score is never overstated).
    return T.Judgement(verdict=str(j.verdict), score=math.floor(j.score),
                       max_score=math.floor(j.max_score),
                       cases=[case_result_to_thrift(c) for c in j.cases], language=j.language,
                       compiles=j.compiles, cache_hit=j.cache_hit, message=j.message,
                       groups=[group_result_to_thrift(g) for g in j.groups] or None,
                       exact_score=j.score, exact_max_score=j.max_score)


def judgement_from_thrift(judgement: Any, raw: Raw | None = None) -> Judgement | None:
    """The exact scores (10, 11) when the sender has them, else the old integer fields."""
    if judgement is None:
        return None
    j = judgement
    raw = raw or Inflation(MAX_TEXT).raw
    score = j.exact_score if j.exact_score is not None else j.score
    max_score = j.exact_max_score if j.exact_max_score is not None else j.max_score
    return Judgement(verdict=verdict_of(j.verdict), score=_number(score),
                     max_score=_number(max_score),
                     cases=[case_result_from_thrift(c, raw) for c in j.cases or []
                            if c is not None],
                     language=j.language or "", compiles=j.compiles or 0,
                     cache_hit=bool(j.cache_hit), message=j.message or "",
                     groups=[group_result_from_thrift(g) for g in j.groups or []
                             if g is not None])


def result_to_thrift(result: Result | None, outputs: bool = True) -> Any:
    """Without `outputs`, the steps' standard outputs go empty (a lean find)."""
    if result is None:
        return None
    return T.Result(
        compile_output=pack(result.compile_output if outputs else b""),
        compile_error=pack(result.compile_error),
        execute_output=pack(result.execute_output if outputs else b""),
        execute_error=pack(result.execute_error),
        compile_report=step_to_thrift(result.compile_report),
        execute_report=step_to_thrift(result.execute_report),
        judgement=judgement_to_thrift(result.judgement),
        files=files_to_thrift(result.files),
        stored={name: T.FileRef(sha256=ref.sha256, size=ref.size)
                for name, ref in result.stored.items()} or None,
    )


def result_from_thrift(result: Any, budget: Inflation | None = None) -> Result | None:
    """Outputs stay bytes, exactly as the steps wrote them."""
    if result is None:
        return None
    inflate = (budget or Inflation(MAX_TEXT)).raw
    return Result(
        compile_output=inflate(result.compile_output),
        compile_error=inflate(result.compile_error),
        execute_output=inflate(result.execute_output),
        execute_error=inflate(result.execute_error),
        compile_report=step_from_thrift(result.compile_report),
        execute_report=step_from_thrift(result.execute_report),
        judgement=judgement_from_thrift(result.judgement, inflate),
        files=files_from_thrift(result.files, inflate),
        stored=stored_from_thrift(result.stored),
    )


def stored_from_thrift(stored: Any) -> dict[str, FileRef]:
    """The streams kept as files; an entry that names no stream or no file is left out (a
    result is never refused for it: the inline bytes stay)."""
    found = {}
    for name, ref in (stored or {}).items():
        if name in OUTPUT_FIELDS and ref is not None and valid_digest(ref.sha256) and (
                isinstance(ref.size, int) and ref.size >= 0):
            found[name] = FileRef(ref.sha256, ref.size)
    return found
