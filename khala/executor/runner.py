"""Running one task: lay out its work dir, compile, execute, turn outcomes into a status."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable

from khala.config import ExecutorSettings
from khala.errors import InvalidInput
from khala.model import Reason, Result, Status, Task
from khala.sandbox.base import Limits, RunSpec, Sandbox, SignalBox

log = logging.getLogger(__name__)

STEP_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def layout(task: Task, workdir: str, settings: ExecutorSettings) -> None:
    """The work dir the commands see: source unzipped at the root, compile.sh, execute.in,
    execute.sh, data unzipped into data/. Raises InvalidInput for unsafe zips."""
    from khala.zipcheck import extract_zip

    extract_zip(task.compile.source, workdir, settings.zip_max_bytes, settings.zip_max_files)
    data_dir = os.path.join(workdir, "data")
    os.makedirs(data_dir, exist_ok=True)
    extract_zip(task.execute.data, data_dir, settings.zip_max_bytes, settings.zip_max_files)
    for name, text in (
        ("compile.sh", task.compile.command),
        ("execute.in", task.execute.input),
        ("execute.sh", task.execute.command),
    ):
        with open(os.path.join(workdir, name), "w", encoding="utf-8") as fh:
            fh.write(text)
            if name.endswith(".sh") and text and not text.endswith("\n"):
                fh.write("\n")


def _clamp(asked: int | None, default: int, maximum: int) -> int:
    return min(asked, maximum) if asked else default


def compile_limits(task: Task, settings: ExecutorSettings) -> Limits:
    s = settings
    return Limits(
        wall_time=float(task.compile.timeout) or None,
        memory=_clamp(task.compile.memory_limit, s.memory_limit, s.max_memory_limit),
        pids=s.pids_limit,
        output=s.output_limit,
    )


def execute_limits(task: Task, settings: ExecutorSettings) -> Limits:
    s, e = settings, task.execute
    return Limits(
        wall_time=float(e.timeout) or None,
        cpu_time=min(e.cpu_limit, s.max_cpu_limit) if e.cpu_limit else None,
        memory=_clamp(e.memory_limit, s.memory_limit, s.max_memory_limit),
        pids=_clamp(e.pids_limit, s.pids_limit, s.max_pids_limit),
        output=_clamp(e.output_limit, s.output_limit, s.max_output_limit),
    )


def _text(data: bytes, limit: int) -> str:
    if len(data) > limit:
        data = data[:limit]
    return data.decode("utf-8", errors="replace")


def run_task(
    task: Task,
    sandbox: Sandbox,
    settings: ExecutorSettings,
    cancel: threading.Event,
    on_status: Callable[[int], None] | None = None,
    signals: SignalBox | None = None,
) -> tuple[int, Result]:
    """Run `task` to its end. Returns (final status, result). Never raises. Signals sent to
    `signals` reach the running step's processes."""
    base = settings.work_dir or None
    if base:
        os.makedirs(base, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=f"khala-{task.id or 'task'}-", dir=base)
    try:
        return _run_in(
            task, workdir, sandbox, settings, cancel, on_status or (lambda _: None), signals
        )
    except Exception as exc:  # our own failure: the task ends as Unknown error, the node lives
        log.exception("task %s failed inside the executor", task.id)
        return Status.UNKNOWN_ERROR, Result(compile_error=f"[khala] internal error: {exc}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_in(
    task: Task,
    workdir: str,
    sandbox: Sandbox,
    settings: ExecutorSettings,
    cancel: threading.Event,
    on_status: Callable[[int], None],
    signals: SignalBox | None = None,
) -> tuple[int, Result]:
    try:
        layout(task, workdir, settings)
    except InvalidInput as exc:
        return Status.UNKNOWN_ERROR, Result(compile_error=f"[khala] rejected task files: {exc}")
    sandbox.prepare_workdir(workdir)
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
            limits=limits,
            signals=signals,
        )
        outcome = sandbox.run(spec, cancel)
        setattr(result, f"{name}_output", _text(outcome.stdout, settings.result_limit))
        setattr(result, f"{name}_error", _text(outcome.stderr, settings.result_limit))
        setattr(result, f"{name}_report", outcome.report)
        if outcome.report.reason == Reason.INTERNAL_ERROR:
            return Status.UNKNOWN_ERROR, result
        if outcome.report.reason != Reason.OK:
            return failed, result
    return Status.SUCCESS, result
