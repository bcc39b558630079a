"""The unsandboxed backend: a plain subprocess in its own session and process group.

No isolation at all; only for trusted code or hosts without bubblewrap (`--sandbox=none`).
Limits it can enforce: wall time, rlimits, output caps. The process group is killed at the end.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from khala.model import Reason, StepReport
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox
from khala.sandbox.capture import Capture

TICK_SECONDS = 0.02  # how often cancel and the output cap are checked
PR_SET_PDEATHSIG = 1


def rlimit_setter(limits: Limits) -> Callable[[], None]:
    """A preexec function applying the rlimits of `limits` (runs in the child)."""

    def apply() -> None:
        pairs = [
            (resource.RLIMIT_CPU, limits.cpu_time and limits.cpu_time + 1),
            (resource.RLIMIT_FSIZE, limits.file_size),
            (resource.RLIMIT_NOFILE, limits.open_files),
            (resource.RLIMIT_STACK, limits.stack),
        ]
        for which, value in pairs:
            if value:
                resource.setrlimit(which, (value, value))
        die_with_parent()

    return apply


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the step dies with the executor thread that started it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def classify(
    status: int, limits: Limits, cpu: float, wall: float, flags: dict[str, bool]
) -> StepReport:
    """Turn a wait status and what was observed into a StepReport. Pure."""
    report = StepReport(time=round(cpu, 6), wall_time=round(wall, 6))
    if os.WIFSIGNALED(status):
        report.signal = os.WTERMSIG(status)
        report.core_dump = os.WCOREDUMP(status)
    else:
        report.exit_code = os.WEXITSTATUS(status)
    if flags.get("cancelled"):
        report.reason = Reason.CANCELLED
    elif flags.get("output"):
        report.reason = Reason.OUTPUT_LIMIT
    elif flags.get("memory"):
        report.reason = Reason.MEMORY_LIMIT
    elif flags.get("pids"):
        report.reason = Reason.PIDS_LIMIT
    elif limits.cpu_time is not None and (
        cpu >= limits.cpu_time or report.signal == signal.SIGXCPU
    ):
        report.reason = Reason.TIME_LIMIT
    elif flags.get("wall"):
        report.reason = Reason.WALL_LIMIT
    elif report.signal is not None:
        report.reason = Reason.SIGNALED
    elif report.exit_code:
        report.reason = Reason.NONZERO_EXIT
    else:
        report.reason = Reason.OK
    return report


class PlainSandbox(Sandbox):
    name = "none"

    def run(self, spec: RunSpec, cancel: threading.Event) -> RunOutcome:
        limits = spec.limits
        overflow = threading.Event()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = open(spec.stdin_path or os.devnull, "rb")  # noqa: SIM115 - closed below
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                spec.argv,
                cwd=spec.workdir,
                stdin=stdin,
                stdout=out_w,
                stderr=err_w,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", **spec.env, "HOME": spec.workdir},
                start_new_session=True,
                preexec_fn=rlimit_setter(limits),
            )
        finally:
            os.close(out_w)
            os.close(err_w)
            stdin.close()
        out = Capture(out_r, limits.output, overflow)
        err = Capture(err_r, limits.output, overflow)
        if spec.signals is not None:
            spec.signals.attach(lambda sig: _signal_group(proc.pid, sig))
        try:
            flags = wait_with_limits(proc, limits, cancel, overflow, start)
        finally:
            if spec.signals is not None:
                spec.signals.detach()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        kill_group(proc.pid)
        stdout, stderr = out.result(), err.result()
        if overflow.is_set():  # also when the writer exited before the wait noticed it
            flags["output"] = True
        cpu = usage.ru_utime + usage.ru_stime
        report = classify(status, limits, cpu, wall, flags)
        report.memory = usage.ru_maxrss * 1024
        return RunOutcome(stdout, stderr, report)


def wait_with_limits(
    proc: subprocess.Popen[bytes],
    limits: Limits,
    cancel: threading.Event,
    overflow: threading.Event,
    start: float,
) -> dict[str, bool]:
    """Block on a pidfd until the child exits (not reaping it); every tick, kill its group on
    a wall limit, output overflow or cancel."""
    flags: dict[str, bool] = {}
    deadline = start + limits.wall_time if limits.wall_time else None
    pidfd = os.pidfd_open(proc.pid)
    try:
        while True:
            timeout = TICK_SECONDS
            if deadline is not None and not flags:
                timeout = max(0.0, min(timeout, deadline - time.monotonic()))
            if select.select([pidfd], [], [], timeout)[0]:
                return flags
            reason = None
            if cancel.is_set():
                reason = "cancelled"
            elif overflow.is_set():
                reason = "output"
            elif deadline is not None and time.monotonic() >= deadline:
                reason = "wall"
            if reason and not flags:
                flags[reason] = True
                kill_group(proc.pid)
    finally:
        os.close(pidfd)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
