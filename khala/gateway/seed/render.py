"""Domain model → the JSON shapes of the HTTP API (seed 004), plus Khala's extensions.

Pure. The seed's keys are always present; extension keys (limits, step reports) only when set.
"""

from __future__ import annotations

from typing import Any

from khala.discovery.base import JudicatorEntry
from khala.model import ExecutorInfo, Result, StepReport, Task, TaskBrief

ELLIPSIS = "..."


def truncate(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters plus '...' when longer; unchanged when limit is None."""
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + ELLIPSIS


def brief_json(brief: TaskBrief | Task) -> dict[str, Any]:
    return {
        "id": brief.id,
        "user": brief.user,
        "add_time": brief.add_time,
        "done": brief.done,
        "status": int(brief.status),
        "executor": brief.executor or None,
        "report_time": brief.report_time,
    }


def step_json(step: StepReport) -> dict[str, Any]:
    return {
        "exit_code": step.exit_code,
        "signal": step.signal,
        "core_dump": step.core_dump,
        "time": step.time,
        "wall_time": step.wall_time,
        "memory": step.memory,
        "reason": step.reason,
    }


def shown(data: bytes) -> str:
    """Output bytes as JSON text: UTF-8, invalid sequences shown as U+FFFD. Only the JSON
    answer decodes; `file=` downloads return the stored bytes unchanged."""
    return data.decode("utf-8", errors="replace")


def result_json(result: Result, limit: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "compile_output": truncate(shown(result.compile_output), limit),
        "compile_error": truncate(shown(result.compile_error), limit),
        "execute_output": truncate(shown(result.execute_output), limit),
        "execute_error": truncate(shown(result.execute_error), limit),
    }
    if result.compile_report is not None:
        body["compile"] = step_json(result.compile_report)
    if result.execute_report is not None:
        body["execute"] = step_json(result.execute_report)
    return body


def _set_limits(body: dict[str, Any], limits: dict[str, float | None]) -> dict[str, Any]:
    body.update({key: value for key, value in limits.items() if value is not None})
    return body


def task_json(task: Task, limit: int | None) -> dict[str, Any]:
    """The Task structure of GET /api/task; text fields truncated to `limit` characters."""
    c, e = task.compile, task.execute
    compile_part = {
        "source": bool(c.source),
        "command": truncate(c.command, limit),
        "timeout": c.timeout,
    }
    execute_part = {
        "input": truncate(e.input, limit),
        "data": bool(e.data),
        "execute_command": truncate(e.command, limit),
        "execute_timeout": e.timeout,
        "execute_standard": truncate(e.standard, limit),
    }
    result = None
    if task.done and task.result is not None:
        result = result_json(task.result, limit)
    return {
        **brief_json(task),
        "compile": _set_limits(compile_part, {"memory_limit": c.memory_limit}),
        "execute": _set_limits(
            execute_part,
            {
                "memory_limit": e.memory_limit,
                "cpu_limit": e.cpu_limit,
                "pids_limit": e.pids_limit,
                "output_limit": e.output_limit,
                "disk_limit": e.disk_limit,
            },
        ),
        "result": result,
    }


def executor_json(info: ExecutorInfo) -> dict[str, Any]:
    return {"id": info.id, "hostname": info.hostname, "report_time": info.report_time}


def judicator_json(entry: JudicatorEntry) -> dict[str, Any]:
    return {"name": entry.name, "address": entry.address}


def file_content(task: Task, name: str) -> bytes:
    """The raw bytes of one downloadable file of a task (zip bytes or UTF-8 text); b"" = none."""
    result = task.result or Result()
    contents: dict[str, bytes | str] = {
        "compile_source": task.compile.source,
        "execute_data": task.execute.data,
        "compile_command": task.compile.command,
        "execute_input": task.execute.input,
        "execute_command": task.execute.command,
        "execute_standard": task.execute.standard,
        "compile_output": result.compile_output,
        "compile_error": result.compile_error,
        "execute_output": result.execute_output,
        "execute_error": result.execute_error,
    }
    value = contents[name]
    return value.encode("utf-8") if isinstance(value, str) else value
