"""Running one task: lay out its work dir, compile, execute, turn outcomes into a status."""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace

from khala.config import ExecutorSettings
from khala.errors import InvalidInput
from khala.executor.outfiles import collect
from khala.executor.stepopts import run_step
from khala.executor.workareas import WorkAreas
from khala.executor.workdirs import make_workdir, remove_workdir
from khala.model import Reason, Result, Status, StepReport, Task
from khala.rules import identity
from khala.rules.limits import (
    COMPILE_MEMORY,
    EXECUTE_CORE,
    EXECUTE_DISK,
    EXECUTE_MEMORY,
    EXECUTE_OUTPUT,
    EXECUTE_PIDS,
)
from khala.rules.seconds import cpu_time, wall_time
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox, SignalBox
from khala.sandbox.bwrap import SANDBOX_GID, SANDBOX_UID
from khala.sandbox.core import DEFAULT_PATH
from khala.sandbox.coredump import cores_stay_local
from khala.streams.hub import TaskStream
from khala.zipcheck import FULL_ERRNOS, ExtractLimit, extract_zip

log = logging.getLogger(__name__)

STEP_ENV = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
# Names at the top of the work dir that Khala writes itself: the source zip may not hold them.
RESERVED = ("compile.sh", "execute.sh", "execute.in", "data")
INTERNAL_ERROR = b"[khala] internal error in the executor; the task did not run to its end"


class LayoutError(Exception):
    """The task's files cannot be laid out as the user sent them (a user mistake)."""


def layout(task: Task, workdir: str, settings: ExecutorSettings) -> None:
    """The work dir the commands see: source unzipped at the root, compile.sh, execute.in,
    execute.sh, data unzipped into data/. Raises InvalidInput for unsafe zips, LayoutError for
    a source that holds a reserved name or files that do not fit the run's limits."""
    s = settings
    disk = work_area(task, s)
    try:
        extract_zip(task.compile.source, workdir, s.zip_max_bytes, s.zip_max_files,
                    s.unpack_timeout)
        clash = [name for name in RESERVED if os.path.lexists(os.path.join(workdir, name))]
        if clash:
            raise LayoutError(f"the source zip holds {', '.join(clash)}: names Khala writes "
                              "itself (compile.sh, execute.sh, execute.in and the data/ "
                              "directory); rename them")
        data_dir = os.path.join(workdir, "data")
        os.mkdir(data_dir, 0o755)
        extract_zip(task.execute.data, data_dir, s.zip_max_bytes, s.zip_max_files,
                    s.unpack_timeout)
        for name, text in (
            ("compile.sh", task.compile.command),
            ("execute.in", task.execute.input),
            ("execute.sh", task.execute.command),
        ):
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as fh:
                fh.write(text)
                if name.endswith(".sh") and text and not text.endswith("\n"):
                    fh.write("\n")
    except ExtractLimit as exc:
        raise LayoutError(f"{exc} (unpack_timeout {s.unpack_timeout:g} s, work area "
                          f"{disk} bytes)") from exc
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise LayoutError(f"the task's files do not fit in the work area ({disk} "
                              "bytes)") from exc
        raise


def work_area(task: Task, settings: ExecutorSettings) -> int:
    """Bytes of the task's work area: its execute_disk_limit clamped to the policy, else the
    executor's disk_limit. A plain task's steps share it (the execute step runs in the files
    the compile step left); a judged task gives it to each case's run (khala/executor/judge.py),
    its builds keep disk_limit."""
    return EXECUTE_DISK.clamp(task, settings, settings.disk_limit)


def compile_limits(task: Task, settings: ExecutorSettings) -> Limits:
    """The compile step's limits: the task's memory ask clamped to the policy, the executor's
    defaults for the rest; no CPU limit, the timeout as wall time (0: the policy's default;
    never beyond its maximum)."""
    s = settings
    return Limits(
        wall_time=wall_time(task.compile.timeout, s),
        memory=COMPILE_MEMORY.clamp(task, s, s.memory_limit),
        pids=s.pids_limit,
        output=s.output_limit,
    )


def execute_limits(task: Task, settings: ExecutorSettings) -> Limits:
    """The execute step's limits: each ask clamped to the policy, the executor's default when
    the task asked nothing; the timeout as wall time and the CPU limit as khala/rules/seconds.py
    reads them (a default when none is asked, never beyond the policy's maximum)."""
    s = settings
    return Limits(
        wall_time=wall_time(task.execute.timeout, s),
        cpu_time=cpu_time(task.execute.cpu_limit, s),
        memory=EXECUTE_MEMORY.clamp(task, s, s.memory_limit),
        pids=EXECUTE_PIDS.clamp(task, s, s.pids_limit),
        output=EXECUTE_OUTPUT.clamp(task, s, s.output_limit),
        disk=work_area(task, s),
        core=EXECUTE_CORE.clamp(task, s, 0) if cores_stay_local() else 0,
    )


def _tap(stream: TaskStream, step: str, which: str, data: bytes) -> None:
    stream.log.append(f"{step}.{which}", data)


# The original Khala's error text of a step its timeout or output limit ended; its clients and
# system test compare it. It replaces what the step wrote to stderr (as the original does); the
# step report's `reason` keeps the structured cause.
STEP_MESSAGES = {
    ("compile", Reason.TIME_LIMIT): b"Compile time out.",
    ("compile", Reason.WALL_LIMIT): b"Compile time out.",
    ("compile", Reason.OUTPUT_LIMIT): b"Compile output limitation exceeded.",
    ("execute", Reason.TIME_LIMIT): b"Execution time out.",
    ("execute", Reason.WALL_LIMIT): b"Execution time out.",
    ("execute", Reason.OUTPUT_LIMIT): b"Execution output limitation exceeded.",
}


def _stored_whole(limits: Limits, result_limit: int) -> Limits:
    """The one rule tying the output cap to the result: a step's cap is at most result_limit,
    so a stream is either kept whole or the step ends with reason output_limit."""
    cap = result_limit if limits.output is None else min(limits.output, result_limit)
    return replace(limits, output=cap)


def _record(result: Result, name: str, outcome: RunOutcome, limit: int) -> StepReport:
    """Store one step's streams as bytes, unchanged. The output cap of a step is at most
    `limit` (result_limit), so nothing longer is kept; should the capture overshoot the cap, the
    stream is cut and the report says output_limit: no result is ever cut silently."""
    report = outcome.report
    output, error = outcome.stdout, outcome.stderr
    if max(len(output), len(error)) > limit and report.reason != Reason.INTERNAL_ERROR:
        report = replace(report, reason=Reason.OUTPUT_LIMIT)
    output, error = output[:limit], error[:limit]
    error = STEP_MESSAGES.get((name, report.reason), error)
    setattr(result, f"{name}_output", output)
    setattr(result, f"{name}_error", error)
    setattr(result, f"{name}_report", report)
    return report


def _files_out(result: Result, task: Task, workdir: str, budget: int) -> StepReport:
    """Take the files the task asks back (`execute.outputs`) into the result, together at most
    the step's output cap; one that does not fit ends the step as output_limit."""
    found = collect(workdir, task.execute.outputs, budget)
    result.files = found.files
    report = result.execute_report
    assert report is not None
    if found.over and report.reason == Reason.OK:
        report = replace(report, reason=Reason.OUTPUT_LIMIT)
        result.execute_report = report
    return report


def run_task(
    task: Task,
    sandbox: Sandbox,
    settings: ExecutorSettings,
    cancel: threading.Event,
    on_status: Callable[[int], None] | None = None,
    signals: SignalBox | None = None,
    stream: TaskStream | None = None,
    areas: WorkAreas | None = None,
    roots: dict[str, str] | None = None,
) -> tuple[int, Result]:
    """Run `task` to its end (API v2 signals sent to `signals` reach the running step's
    processes; `stream` gets the live output and gives an interactive task's input). Returns
    (final status, result). Never raises: a failure of the executor itself ends the task as
    Unknown error (its detail goes to the log, not to the user), and the work dir is removed
    whatever it holds (`areas`: the work dir comes from them, made ahead, and goes back to
    them to be removed in the background). `roots`: "compile"/"execute" → the unpacked image
    that step runs in (none: the host's root)."""
    workdir = None
    try:
        if areas is not None:
            workdir = areas.take(task.id, work_area(task, settings))
        else:
            workdir = make_workdir(task.id, settings)
            sandbox.open_workdir(workdir, work_area(task, settings))
        return _run_in(
            task, workdir, sandbox, settings, cancel, on_status or (lambda _: None), signals,
            stream, roots or {},
        )
    except Exception:  # our own failure: the task ends as Unknown error, the node lives
        log.exception("task %s failed inside the executor", task.id)
        return Status.UNKNOWN_ERROR, Result(compile_error=INTERNAL_ERROR)
    finally:
        if workdir is not None and areas is not None:
            areas.give_back(workdir)
        elif workdir is not None:
            remove_workdir(workdir, sandbox)


def _run_in(
    task: Task,
    workdir: str,
    sandbox: Sandbox,
    settings: ExecutorSettings,
    cancel: threading.Event,
    on_status: Callable[[int], None],
    signals: SignalBox | None = None,
    stream: TaskStream | None = None,
    roots: dict[str, str] | None = None,
) -> tuple[int, Result]:
    roots = roots or {}
    try:
        layout(task, workdir, settings)
    except LayoutError as exc:
        return Status.COMPILE_FAILED, Result(compile_error=f"[khala] task files: {exc}".encode())
    except InvalidInput as exc:
        message = f"[khala] rejected task files: {exc}".encode()
        return Status.UNKNOWN_ERROR, Result(compile_error=message)
    try:  # this executor's own table decides, whatever the judicator accepted
        identity.check_task(task, identity.parse(settings.run_users, settings.run_groups))
    except InvalidInput as exc:
        return Status.UNKNOWN_ERROR, Result(compile_error=f"[khala] refused: {exc}".encode())
    run_as = identity.identity_of(task, SANDBOX_UID, SANDBOX_GID)
    sandbox.prepare_workdir(workdir, run_as)
    result = Result()
    steps = (
        ("compile", None, compile_limits(task, settings), Status.COMPILE_FAILED),
        ("execute", "execute.in", execute_limits(task, settings), Status.RUN_FAILED),
    )
    for name, stdin, limits, failed in steps:
        if name == "execute":
            on_status(Status.RUNNING)
        spec = RunSpec(
            argv=["bash", f"{name}.sh"],
            workdir=workdir,
            stdin_path=os.path.join(workdir, stdin) if stdin else None,
            env=dict(STEP_ENV),
            limits=_stored_whole(limits, settings.result_limit),
            signals=signals,
            identity=run_as,
            root=roots.get(name),
        )
        if stream is not None:
            spec.tap = functools.partial(_tap, stream, name)
            if name == "execute" and stream.feed is not None:
                spec.stdin_feed = stream.feed
        options = task.compile.options if name == "compile" else task.execute.options
        report = _record(result, name, run_step(sandbox, spec, options, cancel),
                         settings.result_limit)
        if name == "execute" and task.execute.outputs:
            report = _files_out(result, task, workdir, spec.limits.output)
        if report.reason == Reason.INTERNAL_ERROR:
            return Status.UNKNOWN_ERROR, result
        if report.reason != Reason.OK:
            return failed, result
    return Status.SUCCESS, result
