"""The unsandboxed backend: a plain subprocess in its own session and process group.

No isolation at all; only for trusted code or hosts without bubblewrap (`--sandbox=none`).
Limits it can enforce (through the core): wall time, rlimits, output caps. The process group is
killed at the end. The work dir's size is not bounded (no work area is mounted).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
from collections.abc import Callable

from khala.sandbox.base import Limits, RunSpec
from khala.sandbox.core import DEFAULT_PATH, CoreSandbox, Process, Usage, apply_rlimits, rlimits

PR_SET_PDEATHSIG = 1


def rlimit_setter(limits: Limits) -> Callable[[], None]:
    """A preexec function applying the rlimits of `limits` (runs in the child)."""
    pairs = rlimits(limits)

    def apply() -> None:
        apply_rlimits(pairs)
        os.umask(0o077)  # what the step creates is this user's alone
        die_with_parent()

    return apply


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the step dies with the executor thread that started it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class GroupProcess(Process):
    """A process group led by the step's top process."""

    def kill(self, wait: bool) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def usage(self, rusage: resource.struct_rusage | None, failed: bool = True) -> Usage:
        if rusage is None:
            return Usage()
        return Usage(cpu=rusage.ru_utime + rusage.ru_stime, memory=rusage.ru_maxrss * 1024)


class PlainSandbox(CoreSandbox):
    name = "none"

    def supports(self, spec: RunSpec) -> str:
        if spec.network:
            return ("the unsandboxed executor (--sandbox none) has no network stack of its "
                    "own to give a step")
        if spec.limits.cpu_rate is not None:
            return "the unsandboxed executor (--sandbox none) cannot set a CPU rate"
        return ""

    def start(self, spec: RunSpec, stdin: int, stdout: int, stderr: int) -> Process:
        proc = subprocess.Popen(
            spec.argv, cwd=os.path.join(spec.workdir, spec.cwd), stdin=stdin, stdout=stdout,
            stderr=stderr,
            env={"PATH": DEFAULT_PATH, **spec.env, "HOME": spec.workdir},
            start_new_session=True, preexec_fn=rlimit_setter(spec.limits))
        proc.returncode = 0  # reaped by the core (os.wait4); keeps Popen from waiting again
        return GroupProcess(proc.pid)
