"""Thrift structs ↔ domain model, in one place. Text fields travel zlib-compressed.

The only module besides the client and the handler that touches the generated structs. Besides
whole tasks it holds the shapes the report call uses (a finished task: id, status, result; a
running task: id, status, executor) and the search arguments, so both ends agree on them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from khala import model
from khala.errors import InvalidInput, KhalaError, NotFound, RemoteError, TooLarge
from khala.model import (
    Assignment,
    Case,
    CaseResult,
    Checker,
    Code,
    Compare,
    Compile,
    Execute,
    ExecutorInfo,
    Judgement,
    Language,
    Result,
    SearchQuery,
    Status,
    StepReport,
    Task,
    TaskBrief,
    compare_mode_of,
    reason_of,
    status_of,
    verdict_of,
)
from khala.rpc import judicator_thrift as T
from khala.rpc import ops
from khala.rules.seconds import from_wire, step_timeout_from_wire, wire_exact, wire_whole

MAX_TEXT = 1 << 30  # default decompression bound of one call (the judicator passes its own)

# The domain refusals: each travels as its own ReturnCode (the class's `code`). Any other
# failure is ERROR (RemoteError on the client side).
REFUSALS: tuple[type[KhalaError], ...] = (TooLarge, InvalidInput, NotFound)


def error_of(code: int, what: str, address: str = "") -> KhalaError:
    """The exception for a non-OK ReturnCode answered by the judicator at `address`."""
    for kind in REFUSALS:
        if code == kind.code:
            return kind(f"{what}: judicator answered {Code(code).name}")
    return RemoteError(f"{what}: judicator at {address} answered code {code}", address)


def pack(text: str | bytes | None) -> bytes:
    if not text:
        return b""
    return zlib.compress(text.encode("utf-8") if isinstance(text, str) else text)


class Inflation:
    """A budget of inflated bytes shared by the compressed fields of one call: a zlib bomb
    stops at the budget (TooLarge), before it is ever held whole; bad zlib is InvalidInput."""

    def __init__(self, limit: int) -> None:
        self.left = max(0, limit)

    def raw(self, data: bytes | None) -> bytes:
        if not data:
            return b""
        try:
            decoder = zlib.decompressobj()
            raw = decoder.decompress(data, self.left + 1)
        except zlib.error as exc:
            raise InvalidInput(f"text field is not zlib-compressed: {exc}") from exc
        if len(raw) > self.left or decoder.unconsumed_tail:
            raise TooLarge("compressed texts inflate beyond the size limit")
        self.left -= len(raw)
        return raw

    def text(self, data: bytes | None) -> str:
        return self.raw(data).decode("utf-8", errors="replace")


def unpack(data: bytes | None, limit: int = MAX_TEXT) -> str:
    return Inflation(limit).text(data)


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


# ----------------------------------------------------------------------------- to thrift


def step_to_thrift(step: StepReport | None) -> Any:
    if step is None:
        return None
    return T.StepReport(
        exit_code=step.exit_code,
        signal=step.signal,
        core_dump=step.core_dump,
        time=step.time,
        wall_time=step.wall_time,
        memory=step.memory,
        reason=step.reason,
    )


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


def case_result_to_thrift(case: CaseResult) -> Any:
    return T.CaseResult(verdict=str(case.verdict), weight=case.weight, time=case.time,
                        wall_time=case.wall_time, memory=case.memory, exit_code=case.exit_code,
                        signal=case.signal, output=pack(case.output), error=pack(case.error),
                        message=case.message)


def judgement_to_thrift(judgement: Judgement | None) -> Any:
    if judgement is None:
        return None
    j = judgement
    return T.Judgement(verdict=str(j.verdict), score=j.score, max_score=j.max_score,
                       cases=[case_result_to_thrift(c) for c in j.cases], language=j.language,
                       compiles=j.compiles, cache_hit=j.cache_hit, message=j.message)


def cases_to_thrift(cases: list[Case]) -> Any:
    if not cases:
        return None
    return [T.Case(input=pack(c.input), standard=pack(c.standard), weight=c.weight,
                   timeout=wire_whole(c.timeout), cpu_limit=wire_whole(c.cpu_limit),
                   memory_limit=c.memory_limit, output_limit=c.output_limit,
                   timeout_exact=wire_exact(c.timeout),
                   cpu_limit_exact=wire_exact(c.cpu_limit)) for c in cases]


def compare_to_thrift(compare: Compare | None) -> Any:
    if compare is None:
        return None
    checker = compare.checker
    return T.Compare(
        mode=str(compare.mode), abs_tol=compare.abs_tol, rel_tol=compare.rel_tol,
        checker=None if checker is None else T.Checker(language=checker.language,
                                                       source=pack(checker.source)))


def language_to_thrift(language: Language) -> Any:
    return T.Language(name=language.name, version=language.version,
                      executors=language.executors,
                      executor_names=list(language.executor_names) or None)


def task_to_thrift(task: Task) -> Any:
    c, e = task.compile, task.execute
    return T.Task(
        id=task.id,
        user=task.user,
        compile=T.Compile(
            source=c.source,
            command=pack(c.command),
            timeout=wire_whole(c.timeout),
            memory_limit=c.memory_limit,
            language=c.language or None,
            timeout_exact=wire_exact(c.timeout),
        ),
        execute=T.Execute(
            input=pack(e.input),
            data=e.data,
            command=pack(e.command),
            timeout=wire_whole(e.timeout),
            standard=pack(e.standard),
            memory_limit=e.memory_limit,
            cpu_limit=wire_whole(e.cpu_limit),
            timeout_exact=wire_exact(e.timeout),
            cpu_limit_exact=wire_exact(e.cpu_limit),
            pids_limit=e.pids_limit,
            output_limit=e.output_limit,
            disk_limit=e.disk_limit,
            cases=cases_to_thrift(e.cases),
            compare=compare_to_thrift(e.compare),
            stop_on_failure=e.stop_on_failure or None,
            interactive=e.interactive or None,
        ),
        add_time=task.add_time,
        done=task.done,
        status=int(task.status),
        executor=task.executor,
        report_time=task.report_time,
        result=result_to_thrift(task.result),
        key=task.key,
        callback_url=task.callback_url,
        webhook=ops.webhook_to_thrift(task.webhook),
        priority=task.priority,
    )


def brief_to_thrift(brief: TaskBrief) -> Any:
    return T.TaskBrief(
        id=brief.id,
        user=brief.user,
        add_time=brief.add_time,
        done=brief.done,
        status=int(brief.status),
        executor=brief.executor,
        report_time=brief.report_time,
        key=brief.key,
    )


def executor_to_thrift(info: ExecutorInfo) -> Any:
    return T.Executor(id=info.id, hostname=info.hostname, report_time=info.report_time)


def completed_to_thrift(task: Task) -> Any:
    """A finished task as an executor hands it in: id, done, status, executor, result only."""
    return T.Task(
        id=task.id,
        done=task.done,
        status=int(task.status),
        executor=task.executor,
        result=result_to_thrift(task.result),
    )


def executing_to_thrift(brief: TaskBrief) -> Any:
    """A running task as an executor lists it: id, status, executor only."""
    return T.TaskBrief(id=brief.id, status=int(brief.status), executor=brief.executor)


def assignment_to_thrift(assignment: Assignment) -> Any:
    """The body of an OK ReportReturn: cancelled ids as id-only briefs, assigned whole tasks."""
    return T.ReportReturn(
        result=Code.OK,
        cancel=[T.TaskBrief(id=i) for i in assignment.cancel],
        assign=[task_to_thrift(t) for t in assignment.assign],
        signals=[T.Signal(id=i, signum=n) for i, n in assignment.signals],
    )


def search_to_wire(query: SearchQuery) -> tuple[Any, ...]:
    """The seven arguments of `search`, in IDL order."""
    q = query
    return (q.id, q.user, q.start_time, q.end_time, q.old_to_new, q.limit, q.page)


# ----------------------------------------------------------------------------- from thrift


def step_from_thrift(step: Any) -> StepReport | None:
    if step is None:
        return None
    return StepReport(
        exit_code=step.exit_code,
        signal=step.signal,
        core_dump=bool(step.core_dump),
        time=float(step.time or 0.0),
        wall_time=float(step.wall_time or 0.0),
        memory=int(step.memory or 0),
        reason=reason_of(step.reason),
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


def case_result_from_thrift(case: Any) -> CaseResult:
    return CaseResult(verdict=verdict_of(case.verdict), weight=case.weight or 0,
                      time=float(case.time or 0.0), wall_time=float(case.wall_time or 0.0),
                      memory=int(case.memory or 0), exit_code=case.exit_code,
                      signal=case.signal, output=unpack(case.output), error=unpack(case.error),
                      message=case.message or "")


def judgement_from_thrift(judgement: Any) -> Judgement | None:
    if judgement is None:
        return None
    j = judgement
    return Judgement(verdict=verdict_of(j.verdict), score=j.score or 0,
                     max_score=j.max_score or 0,
                     cases=[case_result_from_thrift(c) for c in j.cases or [] if c is not None],
                     language=j.language or "", compiles=j.compiles or 0,
                     cache_hit=bool(j.cache_hit), message=j.message or "")


def cases_from_thrift(cases: Any, text: Callable[[bytes | None], str] = unpack) -> list[Case]:
    """Raises InvalidInput for a missing case or undecodable text (`text`: the call's shared
    inflation budget, so many cases cannot together inflate past it)."""
    found = []
    for c in cases or []:
        if c is None:
            raise InvalidInput("a test case is empty")
        found.append(Case(input=text(c.input), standard=text(c.standard),
                          weight=c.weight if c.weight is not None else 1,
                          timeout=from_wire(c.timeout, c.timeout_exact),
                          cpu_limit=from_wire(c.cpu_limit, c.cpu_limit_exact),
                          memory_limit=c.memory_limit,
                          output_limit=c.output_limit))
    return found


def compare_from_thrift(compare: Any, text: Callable[[bytes | None], str] = unpack
                        ) -> Compare | None:
    """Raises InvalidInput for an unknown mode."""
    if compare is None:
        return None
    checker = compare.checker
    try:
        mode = compare_mode_of(compare.mode or "lines")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    return Compare(
        mode=mode,
        abs_tol=compare.abs_tol if compare.abs_tol is not None else Compare.abs_tol,
        rel_tol=compare.rel_tol if compare.rel_tol is not None else Compare.rel_tol,
        checker=None if checker is None else Checker(language=checker.language or "",
                                                     source=text(checker.source)))


def language_from_thrift(language: Any) -> Language:
    return Language(name=language.name or "", version=language.version or "",
                    executors=language.executors or 0,
                    executor_names=[n for n in language.executor_names or [] if n])


def task_from_thrift(task: Any, max_text: int = MAX_TEXT) -> Task:
    """Raises InvalidInput for missing parts, undecodable text, or texts that inflate beyond
    `max_text` bytes together (the judicator passes its task size limit)."""
    if task is None or task.compile is None or task.execute is None:
        raise InvalidInput("a task needs both a compile and an execute part")
    c, e = task.compile, task.execute
    budget = Inflation(max_text)
    text = budget.text
    return Task(
        id=task.id or "",
        user=task.user if task.user is not None else -1,
        compile=Compile(
            source=_bytes(c.source),
            command=text(c.command),
            timeout=step_timeout_from_wire(c.timeout, c.timeout_exact),
            memory_limit=c.memory_limit,
            language=c.language or "",
        ),
        execute=Execute(
            input=text(e.input),
            data=_bytes(e.data),
            command=text(e.command),
            timeout=step_timeout_from_wire(e.timeout, e.timeout_exact),
            standard=text(e.standard),
            memory_limit=e.memory_limit,
            cpu_limit=from_wire(e.cpu_limit, e.cpu_limit_exact),
            pids_limit=e.pids_limit,
            output_limit=e.output_limit,
            disk_limit=e.disk_limit,
            cases=cases_from_thrift(e.cases, text),
            compare=compare_from_thrift(e.compare, text),
            stop_on_failure=bool(e.stop_on_failure),
            interactive=bool(e.interactive),
        ),
        add_time=task.add_time or "",
        done=bool(task.done),
        status=status_of(task.status or 0),
        executor=task.executor or None,
        report_time=task.report_time or "",
        result=result_from_thrift(task.result, budget),
        key=task.key or None,
        callback_url=task.callback_url or None,
        webhook=ops.webhook_from_thrift(task.webhook),
        priority=_priority(task.priority),
    )


def brief_from_thrift(brief: Any) -> TaskBrief:
    return TaskBrief(
        id=brief.id or "",
        user=brief.user or 0,
        add_time=brief.add_time or "",
        done=bool(brief.done),
        status=status_of(brief.status or 0),
        executor=brief.executor or None,
        report_time=brief.report_time or "",
        key=brief.key or None,
    )


def completed_from_thrift(task: Any, budget: Inflation | None = None) -> Task:
    """The parts of a handed-in task that count: id, status, result. Lenient by design: an
    executor's result must not be lost over a malformed text field."""
    try:
        result = result_from_thrift(task.result, budget) or Result()
    except (InvalidInput, TooLarge) as exc:
        result = Result(compile_error=f"[khala] result could not be decoded: {exc}".encode())
        return Task(id=task.id, status=Status.UNKNOWN_ERROR, result=result)
    return Task(id=task.id, status=model.status_of(task.status), result=result)


def search_from_wire(
    id: str | None,  # noqa: A002 - wire name
    user: int | None,
    start_time: str | None,
    end_time: str | None,
    old_to_new: bool | None,
    limit: int | None,
    page: int | None,
) -> SearchQuery:
    """The arguments of `search` as a query; unset (null) filters stay None. Raises
    InvalidInput for a malformed id, an out-of-range number or an unreadable time."""
    if id is not None and not model.valid_id(id):
        raise InvalidInput("id must be 24 lowercase hex characters")
    for value in (user, limit, page):
        if value is not None and not model.valid_int(value):
            raise InvalidInput("user, limit and page must be within 0..2147483647")
    try:
        start = model.canonical_time(start_time) if start_time else None
        end = model.canonical_time(end_time) if end_time else None
    except ValueError as exc:
        raise InvalidInput(f"bad time: {exc}") from exc
    return SearchQuery(
        id=id or None,
        user=user,
        start_time=start,
        end_time=end,
        old_to_new=bool(old_to_new),
        limit=limit or 0,
        page=page or 0,
    )


def assignment_from_thrift(reply: Any, judicator: str = "") -> Assignment:
    """An OK ReportReturn. An assigned task that cannot be decoded is not dropped: it lands in
    `undecodable` with the reason, for the executor to hand back as failed."""
    assignment = Assignment(
        cancel=[b.id for b in reply.cancel or [] if b is not None], judicator=judicator,
        signals=[(s.id, int(s.signum)) for s in reply.signals or []
                 if s is not None and s.id and s.signum is not None],
    )
    for wire in reply.assign or []:
        try:
            assignment.assign.append(task_from_thrift(wire))
        except Exception as exc:  # any malformed part: the task still comes back, as failed
            assignment.undecodable.append((wire.id, str(exc)))
    return assignment


def executor_from_thrift(info: Any) -> ExecutorInfo:
    return ExecutorInfo(
        id=info.id or "", hostname=info.hostname or "", report_time=info.report_time or ""
    )


PRIORITY_RANGE = (-1000, 1000)


def _priority(value: object) -> int:
    """A task's priority from the wire: none (old clients) is 0, out of range is refused."""
    if value is None:
        return 0
    if not isinstance(value, int) or not PRIORITY_RANGE[0] <= value <= PRIORITY_RANGE[1]:
        raise InvalidInput(f"priority must be within {PRIORITY_RANGE[0]}..{PRIORITY_RANGE[1]}")
    return value
