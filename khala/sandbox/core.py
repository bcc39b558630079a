"""The sandbox core shared by every backend: start → wait with limits → classify → clean up.

A backend (`bwrap.py`, `plain.py`) only starts a step's top process and says how to read its
usage and kill it (`Process`); this module owns the rest, once: the rlimits, the environment's
PATH, the safe stdin, the bounded output capture, the pidfd wait loop with the wall, CPU, output
and cancel checks, and the classification of how the step ended into a `khala.model.Reason`.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import select
import signal
import stat
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from khala.errors import SandboxUnavailable
from khala.model import Reason, Rusage, StepReport
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox
from khala.sandbox.capture import Streams

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
TICK_SECONDS = 0.02  # cancel / CPU / output-cap check interval while the step runs
KILL_GRACE_SECONDS = 5.0  # a killed top process that is not gone by then is an internal error


def rlimits(limits: Limits) -> list[tuple[int, int]]:
    """The (resource, value) pairs every backend sets in the child before exec."""
    pairs = [
        # whole seconds, a second beyond the limit: the core's own check (TICK_SECONDS) ends
        # the step at the exact, possibly fractional, limit first
        (resource.RLIMIT_CPU, math.ceil(limits.cpu_time) + 1 if limits.cpu_time else None),
        (resource.RLIMIT_FSIZE, limits.file_size),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_STACK, limits.stack),
        (resource.RLIMIT_CORE, limits.core),
    ]
    return [(which, value) for which, value in pairs if value is not None]


def apply_rlimits(pairs: list[tuple[int, int]]) -> None:
    """Set `pairs` (from `rlimits`) in the calling process: runs in the child."""
    for which, value in pairs:
        resource.setrlimit(which, (value, value))


@dataclass
class Usage:
    """What a backend measured of a finished step."""

    cpu: float = 0.0  # CPU seconds, user + sys, of every process of the step
    memory: int = 0  # peak bytes
    oom: bool = False  # the memory limit's OOM killer fired
    pids: bool = False  # a fork/clone was refused by the pids limit
    rusage: Rusage | None = None  # getrusage's figures of the step (khala/sandbox/rusage.py)
    throttled: int = 0  # CPU periods its CPU rate held the step back in (cgroup cpu.stat)


def classify(status: int | None, limits: Limits, usage: Usage, wall: float,
             stopped: Reason | None) -> StepReport:
    """How a step ended, as a StepReport. Pure.

    `status` is the top process's wait status (None: it could not be reaped — the sandbox
    failed); `stopped` the reason the core killed it for (cancel, output, wall or CPU limit).
    The first that applies wins: cancelled, output_limit, pids_limit and memory_limit (only when
    the step failed), time_limit (CPU ≥ limit or SIGXCPU), wall_limit, signaled, nonzero_exit,
    ok."""
    report = StepReport(time=round(usage.cpu, 6), wall_time=round(wall, 6), memory=usage.memory,
                        rusage=usage.rusage)
    if status is None:
        report.reason = Reason.INTERNAL_ERROR
        return report
    if os.WIFSIGNALED(status):
        report.signal = os.WTERMSIG(status)
        report.core_dump = os.WCOREDUMP(status)
    else:
        report.exit_code = os.WEXITSTATUS(status)
    failed = report.signal is not None or report.exit_code != 0
    over_cpu = limits.cpu_time is not None and (
        usage.cpu >= limits.cpu_time or report.signal == signal.SIGXCPU)
    if stopped in (Reason.CANCELLED, Reason.OUTPUT_LIMIT):
        report.reason = stopped
    elif failed and usage.pids:
        # before memory: every refused fork/clone first copies the process and then frees it,
        # and that churn is charged to the cgroup, so a fork bomb of a few pages can reach the
        # memory limit after the pids limit; the refused fork is the cause
        report.reason = Reason.PIDS_LIMIT
    elif failed and usage.oom:
        report.reason = Reason.MEMORY_LIMIT
    elif over_cpu or stopped == Reason.TIME_LIMIT:
        report.reason = Reason.TIME_LIMIT
    elif stopped is not None:
        report.reason = stopped
    elif report.signal is not None:
        report.reason = Reason.SIGNALED
    elif report.exit_code:
        report.reason = Reason.NONZERO_EXIT
    else:
        report.reason = Reason.OK
    return report


class Process:
    """One started step, as a backend hands it to the core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the whole step, or None when it cannot be read live."""
        return None

    def step_pid(self) -> int:
        """The host pid of the step's command (default: the top process, which it is). A
        backend that starts the command below a launcher looks for it while it runs (the core
        asks at every tick) and answers the launcher's pid until it is found."""
        return self.pid

    @abstractmethod
    def kill(self, wait: bool) -> None:
        """Kill every process of the step (`wait`: until none is left, bounded)."""

    @abstractmethod
    def usage(self, rusage: resource.struct_rusage | None, failed: bool = True) -> Usage:
        """What the finished step used (`rusage` is the top process's, from wait4, if any).
        `failed` False (it exited 0): the OOM and pids counters, which only explain a
        failure, need not be read."""

    def open_pidfd(self) -> int:
        """A pidfd of the top process (a backend whose step may already have exited hands the
        one it opened before letting it run)."""
        return os.pidfd_open(self.pid)

    def reap(self) -> tuple[int, resource.struct_rusage | None]:
        """Wait for the exited top process: (wait status, its rusage or None). Called once the
        pidfd says it exited; raises OSError if its status cannot be had."""
        _, status, rusage = os.wait4(self.pid, 0)
        return status, rusage

    def decode(self, status: int, killed: bool) -> int:
        """The top process's wait status as the step's (a backend may unwrap a wrapper's)."""
        return status

    def release(self) -> bool:
        """Free what the run held; False if some process of it survived."""
        return True

    def own_io(self) -> tuple[int, int, int | None] | None:
        """Pipes the backend made for the step itself, now the core's: the read ends of its
        stdout and stderr and the write end of its stdin (live input only; else None).
        None (the default): the step writes to the pipes the core passed to `start`."""
        return None

    def live_usage(self) -> dict[str, float | int]:
        """What the step uses now (executor statistics); default: CPU time when readable."""
        cpu = self.cpu_seconds()
        return {"pid": self.step_pid()} if cpu is None else {"cpu_time": cpu,
                                                              "pid": self.step_pid()}

    def signal(self, signum: int) -> None:
        """Send a signal to the step's processes (API v2); default: the process group."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


class CoreSandbox(Sandbox):
    """A sandbox whose backend provides `start`; the core runs the step around it."""

    @abstractmethod
    def start(self, spec: RunSpec, stdin: int, stdout: int, stderr: int) -> Process:
        """Start the step's top process (in its own process group); SandboxUnavailable if the
        sandbox cannot. The fds are the child's; the core closes its own copies."""

    def run(self, spec: RunSpec, cancel: threading.Event) -> RunOutcome:
        start = time.monotonic()
        stdin, out_r, out_w, feed_w, note = step_stdio(spec)
        err_r, err_w = os.pipe()
        try:
            proc = self.start(spec, stdin, out_w, err_w)
        except (SandboxUnavailable, OSError, ValueError) as exc:
            for fd in (out_r, err_r, feed_w):
                if fd is not None:
                    os.close(fd)
            log.warning("sandbox %s could not start a step: %s", self.name, exc)
            outcome = internal_error("the sandbox could not start this step", start)
            outcome.detail = str(exc)
            return outcome
        finally:
            for fd in (stdin, out_w, err_w):
                os.close(fd)
        own = proc.own_io()
        if own is not None:  # the step writes to the backend's pipes, not to the core's
            for fd in (out_r, err_r, feed_w):
                if fd is not None:
                    os.close(fd)
            out_r, err_r, feed_w = own
        if spec.connect is not None and feed_w is not None and out_r is not None:
            spec.connect(feed_w, out_r)  # the other side of an interaction owns them now
            out_r = feed_w = None
        clean = False
        if spec.signals is not None:
            spec.signals.attach(proc.signal, proc.live_usage)
        if spec.stdin_feed is not None and feed_w is not None:
            spec.stdin_feed.start(feed_w)
        try:
            outcome = self._finish(proc, spec.limits, cancel, out_r, err_r, start, spec.tap)
        finally:
            if spec.signals is not None:
                spec.signals.detach()
            if spec.stdin_feed is not None:
                spec.stdin_feed.stop()
            clean = proc.release()
        if not clean:
            outcome.report.reason = Reason.INTERNAL_ERROR
            outcome.stderr += b"\nkhala: processes of this step survived the kill\n"
        outcome.stderr = note + outcome.stderr
        return outcome

    @staticmethod
    def _finish(proc: Process, limits: Limits, cancel: threading.Event, out_r: int | None,
                err_r: int, start: float,
                tap: Callable[[str, bytes], None] | None = None) -> RunOutcome:
        overflow = threading.Event()
        streams = Streams(out_r, err_r, limits.output, overflow, tap)
        watch = Watch(proc, limits, cancel, overflow, start)
        try:
            stopped, waited = wait_step(proc, watch, streams)
            wall = time.monotonic() - start
            proc.kill(wait=True)
            streams.drain()
        finally:
            streams.close()
        stdout, stderr = streams.result()
        killed = stopped is not None
        if overflow.is_set() and stopped != Reason.CANCELLED:  # also after the writer exited
            stopped = Reason.OUTPUT_LIMIT
        if waited is None:
            report = classify(None, limits, Usage(cpu=proc.cpu_seconds() or 0.0), wall, stopped)
        else:
            status = proc.decode(waited[0], killed)
            failed = not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
            report = classify(status, limits, proc.usage(waited[1], failed), wall, stopped)
        report.pid = proc.step_pid()
        return RunOutcome(stdout, stderr, report)


class Watch:
    """The per-tick test of a running step: why it must be killed now, if it must."""

    def __init__(self, proc: Process, limits: Limits, cancel: threading.Event,
                 overflow: threading.Event, start: float) -> None:
        self.proc, self.limits, self.cancel, self.overflow = proc, limits, cancel, overflow
        self.deadline = start + limits.wall_time if limits.wall_time else None

    def reason(self) -> Reason | None:
        if self.cancel.is_set():
            return Reason.CANCELLED
        if self.overflow.is_set():
            return Reason.OUTPUT_LIMIT
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return Reason.WALL_LIMIT
        cpu_limit = self.limits.cpu_time
        if cpu_limit is not None and (self.proc.cpu_seconds() or 0.0) >= cpu_limit:
            return Reason.TIME_LIMIT
        return None


def wait_step(proc: Process, watch: Watch, streams: Streams
              ) -> tuple[Reason | None, tuple[int, resource.struct_rusage | None] | None]:
    """Block on a pidfd until the top process exits, reading the output `streams` meanwhile;
    at every tick (and at the wall deadline, and when the output overflows) ask `watch`, and
    kill the step the first time it names a reason. Returns that reason and the reaped (wait
    status, rusage), or None when the killed process was not gone within KILL_GRACE_SECONDS."""
    deadline = watch.deadline
    stopped: Reason | None = None
    kill_deadline = 0.0
    next_tick = time.monotonic() + TICK_SECONDS
    pidfd = proc.open_pidfd()
    try:
        while True:
            now = time.monotonic()
            timeout = max(0.0, next_tick - now)
            if deadline is not None and stopped is None:
                timeout = max(0.0, min(timeout, deadline - now))
            ready = select.select([pidfd, *streams.fds()], [], [], timeout)[0]
            if pidfd in ready:
                break
            for fd in ready:
                streams.read(fd)
            now = time.monotonic()
            due = now >= next_tick or (deadline is not None and now >= deadline)
            if not due and not (stopped is None and watch.overflow.is_set()):
                continue
            next_tick = now + TICK_SECONDS
            proc.step_pid()  # a backend with a launcher spots the command while it runs
            if stopped is not None:
                if now >= kill_deadline:
                    return stopped, None
                continue
            stopped = watch.reason()
            if stopped is not None:
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                except ProcessLookupError:  # it exited meanwhile (not yet reaped): kill the rest
                    pass
                proc.kill(wait=False)
                kill_deadline = time.monotonic() + KILL_GRACE_SECONDS
    finally:
        os.close(pidfd)
    try:
        return stopped, proc.reap()
    except OSError as exc:
        log.warning("cannot reap the top process of a step: %s", exc)
        return stopped, None


def step_stdio(spec: RunSpec) -> tuple[int, int | None, int, int | None, bytes]:
    """The step's stdin and stdout: (stdin for the child, stdout's read end for the core or
    None when stdout is not captured, stdout for the child, the write end of a stdin pipe
    for a live feed or an interaction or None, a note for stderr)."""
    if spec.stdio is not None:  # the other side of an interaction's pipes: not captured
        stdin, out_w = spec.stdio
        return stdin, None, out_w, None, b""
    out_r, out_w = os.pipe()
    if spec.stdin_feed is not None or spec.connect is not None:
        stdin, feed_w = os.pipe()
        return stdin, out_r, out_w, feed_w, b""
    stdin, note = open_stdin(spec.stdin_path)
    return stdin, out_r, out_w, None, note


def open_stdin(path: str | None) -> tuple[int, bytes]:
    """Open the step's input without trusting the work dir: the previous step may have
    replaced it with a symlink to a host file or a FIFO. Only a regular file is used (the last
    component is not followed); anything else gives an empty input and a note on stderr."""
    devnull = os.O_RDONLY | os.O_CLOEXEC
    if path is None:
        return os.open(os.devnull, devnull), b""
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        note = f"khala: input {name} not opened ({exc.strerror}); empty input\n"
        return os.open(os.devnull, devnull), note.encode()
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        note = f"khala: input {name} is not a regular file; empty input\n"
        return os.open(os.devnull, devnull), note.encode()
    os.set_blocking(fd, True)
    return fd, b""


def internal_error(message: str, start: float) -> RunOutcome:
    """The outcome of a step the sandbox itself failed (no host detail: that goes to the log)."""
    report = StepReport(wall_time=round(time.monotonic() - start, 6), reason=Reason.INTERNAL_ERROR)
    return RunOutcome(b"", f"khala: {message}\n".encode(), report)
