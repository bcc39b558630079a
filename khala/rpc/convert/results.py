"""What a run produced on the wire: a task's Result with its step reports and judgement."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from khala.model import CaseResult, Judgement, Result, Rusage, StepReport, reason_of, verdict_of
from khala.rpc import judicator_thrift as T
from khala.rpc.convert.text import MAX_TEXT, Inflation, pack, unpack

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


def case_result_to_thrift(case: CaseResult) -> Any:
    return T.CaseResult(verdict=str(case.verdict), weight=case.weight, time=case.time,
                        wall_time=case.wall_time, memory=case.memory, exit_code=case.exit_code,
                        signal=case.signal, output=pack(case.output), error=pack(case.error),
                        message=case.message)


def case_result_from_thrift(case: Any) -> CaseResult:
    return CaseResult(verdict=verdict_of(case.verdict), weight=case.weight or 0,
                      time=float(case.time or 0.0), wall_time=float(case.wall_time or 0.0),
                      memory=int(case.memory or 0), exit_code=case.exit_code,
                      signal=case.signal, output=unpack(case.output), error=unpack(case.error),
                      message=case.message or "")


def judgement_to_thrift(judgement: Judgement | None) -> Any:
    if judgement is None:
        return None
    j = judgement
    return T.Judgement(verdict=str(j.verdict), score=j.score, max_score=j.max_score,
                       cases=[case_result_to_thrift(c) for c in j.cases], language=j.language,
                       compiles=j.compiles, cache_hit=j.cache_hit, message=j.message)


def judgement_from_thrift(judgement: Any) -> Judgement | None:
    if judgement is None:
        return None
    j = judgement
    return Judgement(verdict=verdict_of(j.verdict), score=j.score or 0,
                     max_score=j.max_score or 0,
                     cases=[case_result_from_thrift(c) for c in j.cases or [] if c is not None],
                     language=j.language or "", compiles=j.compiles or 0,
                     cache_hit=bool(j.cache_hit), message=j.message or "")


def result_to_thrift(result: Result | None) -> Any:
    if result is None:
        return None
    return T.Result(
        compile_output=pack(result.compile_output),
        compile_error=pack(result.compile_error),
        execute_output=pack(result.execute_output),
        execute_error=pack(result.execute_error),
        compile_report=step_to_thrift(result.compile_report),
        execute_report=step_to_thrift(result.execute_report),
        judgement=judgement_to_thrift(result.judgement),
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
        judgement=judgement_from_thrift(result.judgement),
    )
