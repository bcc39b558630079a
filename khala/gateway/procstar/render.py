"""A Khala task as a Procstar process result (docs/procstar.md). Pure.

    {"errors": [...], "pid": 1234, "status": {"status": 0, "exit_code": 0, "signum": null,
     "core_dump": false}, "rusage": {"utime": 0.01, ..., "maxrss": 3260416, ...},
     "fds": {"stdout": {...}, "stderr": {...}}, "khala": {...}}

`status` and `rusage` are null until the process completed; `pid` is null before it started.
`fds` describes the two captured outputs; their text is included on request.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import Any

from khala.model import Reason, Status, StepReport, Task
from khala.taskjson import convert

FDS = {"stdout": "execute.stdout", "stderr": "execute.stderr"}
FD_NAMES = {"1": "stdout", "2": "stderr", "stdout": "stdout", "stderr": "stderr"}
STOPPED_BY_KHALA = frozenset({Reason.TIME_LIMIT, Reason.WALL_LIMIT, Reason.MEMORY_LIMIT,
                              Reason.OUTPUT_LIMIT, Reason.PIDS_LIMIT, Reason.CANCELLED})


@dataclass
class Output:
    """One captured fd as known now: its bytes from byte `start` on (a running process's
    output comes from the executor, which keeps the last part of it), whether that is all of
    it for good (`complete`), or why it cannot be read now (`error`)."""

    data: bytes = b""
    start: int = 0
    complete: bool = False
    error: str = ""


def stored_outputs(task: Task) -> dict[str, Output]:
    """The outputs of a finished task (empty ones before it ran)."""
    r = task.result
    done = task.done
    if r is None:
        return {fd: Output(complete=done) for fd in FDS}
    return {"stdout": Output(bytes(r.execute_output), complete=done),
            "stderr": Output(bytes(r.execute_error), complete=done)}


def fd_result(output: Output, with_text: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "capture", "length": output.start + len(output.data),
                           "start": output.start, "complete": output.complete}
    if output.error:
        doc["error"] = output.error
        doc["length"] = None
    if with_text and not output.error:
        try:
            doc["text"], doc["encoding"] = output.data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            doc["text"], doc["encoding"] = base64.b64encode(output.data).decode(), "base64"
    return doc


def exit_status(report: StepReport | None) -> dict[str, Any] | None:
    if report is None or report.wait_status is None:
        return None
    return {"status": report.wait_status, "exit_code": report.exit_code,
            "signum": report.signal, "core_dump": bool(report.core_dump)}


def errors_of(task: Task) -> list[str]:
    """What kept the process from running its own course, as Khala saw it."""
    if not task.done:
        return []
    r = task.result
    report = r.execute_report if r is not None else None
    found = []
    if report is None:
        if task.status == Status.CANCELLED:
            found.append("cancelled before it started")
        elif r is not None and (r.compile_error or r.compile_output):
            text = bytes(r.compile_error or r.compile_output).decode("utf-8", "replace")
            found.append(text.strip() or "the process could not be started")
        else:
            found.append("the process could not be started")
        return found
    step = convert.step_of(report, bytes(r.execute_error) if r is not None else b"")
    found += step.errors if step is not None else []
    if report.reason in STOPPED_BY_KHALA:
        found.append(f"stopped by Khala: {report.reason}")
    elif report.reason == Reason.INTERNAL_ERROR and not found:
        found.append("Khala failed to run the process to its end")
    return found


def proc_result(task: Task, outputs: dict[str, Output], live_pid: int | None,
                with_text: bool) -> dict[str, Any]:
    """The process result of `task`; `live_pid` is its pid while it runs (the executor's
    report), `outputs` its fds as known now."""
    r = task.result
    report = r.execute_report if task.done and r is not None else None
    ran = report is not None and report.reason != Reason.INTERNAL_ERROR
    return {
        "errors": errors_of(task),
        "pid": report.pid if report is not None else live_pid,
        "status": exit_status(report) if ran else None,
        "rusage": asdict(report.rusage) if ran and report and report.rusage else None,
        "fds": {fd: fd_result(outputs[fd], with_text) for fd in FDS},
        "khala": {"task": task.id, "state": convert.status_name(int(task.status)),
                  "executor": task.executor},
    }
