"""Thrift structs ↔ domain model, in one place. Text fields travel zlib-compressed."""

from __future__ import annotations

import zlib
from typing import Any

from khala.errors import InvalidInput
from khala.model import (
    Compile,
    Execute,
    ExecutorInfo,
    Result,
    StepReport,
    Task,
    TaskBrief,
)
from khala.rpc import judicator_thrift as T

MAX_TEXT = 1 << 30  # decompression bound: no zlib bomb can make more than this


def pack(text: str | None) -> bytes:
    return zlib.compress(text.encode("utf-8")) if text else b""


def unpack(data: bytes | None) -> str:
    if not data:
        return ""
    try:
        decoder = zlib.decompressobj()
        raw = decoder.decompress(data, MAX_TEXT)
        if decoder.unconsumed_tail:
            raise InvalidInput("compressed text field is too large")
    except zlib.error as exc:
        raise InvalidInput(f"text field is not zlib-compressed: {exc}") from exc
    return raw.decode("utf-8", errors="replace")


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
    )


def task_to_thrift(task: Task) -> Any:
    c, e = task.compile, task.execute
    return T.Task(
        id=task.id,
        user=task.user,
        compile=T.Compile(
            source=c.source, command=pack(c.command), timeout=c.timeout, memory_limit=c.memory_limit
        ),
        execute=T.Execute(
            input=pack(e.input),
            data=e.data,
            command=pack(e.command),
            timeout=e.timeout,
            standard=pack(e.standard),
            memory_limit=e.memory_limit,
            cpu_limit=e.cpu_limit,
            pids_limit=e.pids_limit,
            output_limit=e.output_limit,
        ),
        add_time=task.add_time,
        done=task.done,
        status=int(task.status),
        executor=task.executor,
        report_time=task.report_time,
        result=result_to_thrift(task.result),
        key=task.key,
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
        reason=step.reason or "",
    )


def result_from_thrift(result: Any) -> Result | None:
    if result is None:
        return None
    return Result(
        compile_output=unpack(result.compile_output),
        compile_error=unpack(result.compile_error),
        execute_output=unpack(result.execute_output),
        execute_error=unpack(result.execute_error),
        compile_report=step_from_thrift(result.compile_report),
        execute_report=step_from_thrift(result.execute_report),
    )


def task_from_thrift(task: Any) -> Task:
    """Raises InvalidInput for missing parts or undecodable text."""
    if task is None or task.compile is None or task.execute is None:
        raise InvalidInput("a task needs both a compile and an execute part")
    c, e = task.compile, task.execute
    return Task(
        id=task.id or "",
        user=task.user if task.user is not None else -1,
        compile=Compile(
            source=_bytes(c.source),
            command=unpack(c.command),
            timeout=c.timeout if c.timeout is not None else -1,
            memory_limit=c.memory_limit,
        ),
        execute=Execute(
            input=unpack(e.input),
            data=_bytes(e.data),
            command=unpack(e.command),
            timeout=e.timeout if e.timeout is not None else -1,
            standard=unpack(e.standard),
            memory_limit=e.memory_limit,
            cpu_limit=e.cpu_limit,
            pids_limit=e.pids_limit,
            output_limit=e.output_limit,
        ),
        add_time=task.add_time or "",
        done=bool(task.done),
        status=task.status or 0,
        executor=task.executor or None,
        report_time=task.report_time or "",
        result=result_from_thrift(task.result),
        key=task.key or None,
    )


def brief_from_thrift(brief: Any) -> TaskBrief:
    return TaskBrief(
        id=brief.id or "",
        user=brief.user or 0,
        add_time=brief.add_time or "",
        done=bool(brief.done),
        status=brief.status or 0,
        executor=brief.executor or None,
        report_time=brief.report_time or "",
        key=brief.key or None,
    )


def executor_from_thrift(info: Any) -> ExecutorInfo:
    return ExecutorInfo(
        id=info.id or "", hostname=info.hostname or "", report_time=info.report_time or ""
    )
