"""A step starts with every signal at its default disposition, however the executor was
started (khala/sandbox/sigdefault.py): an executor that ignores signals (as under `nohup`, or
when a program that uses glibc's `posix_spawn` started it: signals 32 and 33) passes none of
them on, cold or through a warm box's init and stems, nor unsandboxed (`--sandbox none`)."""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import tempfile
import threading
from collections.abc import Iterator

import pytest

from khala.errors import SandboxUnavailable
from khala.model import Reason
from khala.sandbox.base import MIB, Limits, RunOutcome, RunSpec, SignalBox
from khala.sandbox.bwrap import check_bwrap
from khala.sandbox.core import CoreSandbox
from khala.sandbox.plain import PlainSandbox
from khala.sandbox.sigdefault import RT_SIGACTION
from khala.sandbox.warm import WarmSandbox
from tests.fixtures.servers import missing

pytestmark = pytest.mark.integration  # real sandboxes

IGNORED = (signal.SIGHUP, signal.SIGUSR2, 32)  # 32: only the raw system call reaches it
STATUS = "grep -E '^Sig(Blk|Ign)' /proc/self/status"  # grep's own: bash ignores SIGQUIT itself


def raw_sigaction(sig: int, handler: int) -> int:
    """Set `sig`'s handler (0 default, 1 ignore) with rt_sigaction; the handler it had."""
    number = RT_SIGACTION.get(platform.machine())
    if number is None:
        pytest.skip(f"no rt_sigaction number known for {platform.machine()}")
    new, old = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    ctypes.c_ulong.from_buffer(new).value = handler
    result = ctypes.CDLL(None, use_errno=True).syscall(
        ctypes.c_long(number), ctypes.c_long(sig), new, old, ctypes.c_long(8))
    assert result == 0, ctypes.get_errno()
    return ctypes.c_ulong.from_buffer(old).value


@pytest.fixture()
def ignoring() -> Iterator[None]:
    """This process (the executor's part) ignores IGNORED while the test runs."""
    before = {sig: raw_sigaction(sig, 1) for sig in IGNORED}
    try:
        with open("/proc/self/status") as fh:
            ignored = int(next(line for line in fh if line.startswith("SigIgn")).split()[1], 16)
        assert all(ignored & (1 << (sig - 1)) for sig in IGNORED), hex(ignored)
        yield
    finally:
        for sig, handler in before.items():
            raw_sigaction(sig, handler)


def run_in_workdir(sandbox: CoreSandbox, argv: list[str], wall_time: float,
                   signals: SignalBox | None = None) -> RunOutcome:
    """`argv` run once in a fresh work dir of `sandbox`."""
    with tempfile.TemporaryDirectory(prefix="khala-test-signals-") as base:
        os.chmod(base, 0o711)
        workdir = os.path.join(base, "run")
        os.mkdir(workdir)
        sandbox.open_workdir(workdir, 16 * MIB)
        try:
            sandbox.prepare_workdir(workdir)
            return sandbox.run(RunSpec(argv=argv, workdir=workdir, signals=signals,
                                       limits=Limits(wall_time=wall_time)), threading.Event())
        finally:
            sandbox.close_workdir(workdir)


def step_status(sandbox: CoreSandbox) -> list[str]:
    outcome = run_in_workdir(sandbox, ["bash", "-c", STATUS], 20)
    assert outcome.report.reason == Reason.OK, outcome
    return outcome.stdout.decode().splitlines()


@pytest.mark.parametrize("kind", ["cold", "warm", "plain"])
def test_a_step_inherits_no_ignored_signal_from_the_executor(ignoring: None, kind: str) -> None:
    sandbox: CoreSandbox
    if kind == "plain":  # --sandbox none: no isolation, but the same signals
        sandbox = PlainSandbox()
    else:
        try:  # made while this process ignores them: a warm box's init inherits that state
            sandbox = check_bwrap(WarmSandbox(1) if kind == "warm" else None)
        except SandboxUnavailable as exc:  # pragma: no cover - depends on the host
            missing(f"bwrap sandbox unavailable: {exc}")
    try:
        for _ in range(2):  # a warm box's first stem and a later one
            assert step_status(sandbox) == ["SigBlk:\t0000000000000000",
                                            "SigIgn:\t0000000000000000"]
    finally:
        sandbox.close()


@pytest.mark.parametrize("kind", ["cold", "warm"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1])
def test_a_signal_sent_before_the_command_exists_reaches_it(kind: str, signum: int) -> None:
    """A signal sent as the step starts (queued in the box before it, so delivered the moment
    the sandbox attaches, while bwrap is still setting up and no command exists yet) reaches
    the command once it runs: the step ends by that signal, not at its wall limit."""
    try:
        sandbox = check_bwrap(WarmSandbox(1) if kind == "warm" else None)
    except SandboxUnavailable as exc:  # pragma: no cover - depends on the host
        missing(f"bwrap sandbox unavailable: {exc}")
    try:
        box = SignalBox()
        box.send(signum)
        outcome = run_in_workdir(sandbox, ["sleep", "120"], 30, box)
    finally:
        sandbox.close()
    assert outcome.report.reason == Reason.SIGNALED, outcome.report
    assert outcome.report.signal == signum, outcome.report
