"""The unsandboxed backend: a plain subprocess in its own session and process group.

No isolation at all; only for trusted code or hosts without bubblewrap (`--sandbox=none`).
Limits it can enforce (through the core): wall time, rlimits, output caps. The process group is
killed at the end. The work dir's size is not bounded (no work area is mounted). A step with an
identity (another host user) needs the executor to run as root.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
from collections.abc import Callable

from khala.errors import SandboxUnavailable
from khala.sandbox import rusage
from khala.sandbox.base import Limits, RunSpec
from khala.sandbox.core import DEFAULT_PATH, CoreSandbox, Process, Usage, apply_rlimits, rlimits
from khala.sandbox.fstree import chown_tree
from khala.sandbox.identity import check_identity, drop_privileges
from khala.sandbox.sigdefault import defaulter

PR_SET_PDEATHSIG = 1


def rlimit_setter(limits: Limits, identity: tuple[int, int] | None = None
                  ) -> Callable[[], None]:
    """A preexec function setting every signal to its default (none ignored that the executor
    inherited: khala/sandbox/sigdefault.py), applying the rlimits of `limits` (runs in the
    child), then becoming `identity` when given."""
    pairs = rlimits(limits)
    default_signals = defaulter()

    def apply() -> None:
        default_signals()
        apply_rlimits(pairs)
        os.umask(0o077)  # what the step creates is this user's alone
        die_with_parent()
        if identity is not None:
            drop_privileges(identity)

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

    def usage(self, waited: resource.struct_rusage | None, failed: bool = True) -> Usage:
        """All from wait4: the step's own memory is not measured apart here (its `maxrss`
        includes the executor's at the fork, khala/sandbox/rusage.py)."""
        if waited is None:
            return Usage()
        measured = rusage.from_wait(waited)
        return Usage(cpu=waited.ru_utime + waited.ru_stime, memory=measured.maxrss,
                     rusage=measured)


class PlainSandbox(CoreSandbox):
    name = "none"

    def supports(self, spec: RunSpec) -> str:
        if spec.network:
            return ("the unsandboxed executor (--sandbox none) has no network stack of its "
                    "own to give a step")
        if spec.limits.cpu_rate is not None:
            return "the unsandboxed executor (--sandbox none) cannot set a CPU rate"
        if spec.hostname:
            return ("the unsandboxed executor (--sandbox none) has no UTS namespace of its own "
                    "to name a step's host")
        return ""

    def prepare_workdir(self, workdir: str, identity: tuple[int, int] | None = None) -> None:
        if identity is not None:
            self._check(identity)
            os.chown(workdir, *identity)
            chown_tree(workdir, *identity)

    @staticmethod
    def _check(identity: tuple[int, int]) -> None:
        check_identity(identity)
        if os.geteuid() != 0:
            raise SandboxUnavailable("a step runs as another user only when the executor "
                                     "runs as root")

    def start(self, spec: RunSpec, stdin: int, stdout: int, stderr: int) -> Process:
        if spec.identity is not None:
            self._check(spec.identity)
        if spec.root is not None:
            raise SandboxUnavailable("a step in an image needs the bwrap sandbox (this executor "
                                     "runs steps unsandboxed, on its host's root)")
        proc = subprocess.Popen(
            spec.argv, cwd=os.path.join(spec.workdir, spec.cwd), stdin=stdin, stdout=stdout,
            stderr=stderr,
            env={"PATH": DEFAULT_PATH, **spec.env, "HOME": spec.workdir},
            start_new_session=True, preexec_fn=rlimit_setter(spec.limits, spec.identity))
        proc.returncode = 0  # reaped by the core (os.wait4); keeps Popen from waiting again
        return GroupProcess(proc.pid)
