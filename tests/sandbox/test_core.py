"""The sandbox core's pure parts: classification of how a step ended, the rlimits."""

from __future__ import annotations

import resource
import signal

import pytest

from khala.model import Reason
from khala.sandbox.base import Limits
from khala.sandbox.core import Usage, classify, rlimits


def exited(code: int) -> int:
    return code << 8


def killed(sig: int) -> int:
    return sig


LIMITS = Limits(cpu_time=2)


@pytest.mark.parametrize(
    ("status", "usage", "stopped", "reason"),
    [
        (exited(0), Usage(), None, Reason.OK),
        (exited(3), Usage(), None, Reason.NONZERO_EXIT),
        (killed(signal.SIGSEGV), Usage(), None, Reason.SIGNALED),
        (killed(signal.SIGKILL), Usage(), Reason.CANCELLED, Reason.CANCELLED),
        (killed(signal.SIGKILL), Usage(oom=True), Reason.CANCELLED, Reason.CANCELLED),
        (exited(0), Usage(), Reason.OUTPUT_LIMIT, Reason.OUTPUT_LIMIT),
        (killed(signal.SIGKILL), Usage(oom=True), None, Reason.MEMORY_LIMIT),
        (exited(0), Usage(oom=True), None, Reason.OK),  # OOM of a child the step survived
        (exited(1), Usage(pids=True), None, Reason.PIDS_LIMIT),
        (exited(0), Usage(pids=True), None, Reason.OK),
        (killed(signal.SIGKILL), Usage(oom=True, pids=True), None, Reason.PIDS_LIMIT),
        (killed(signal.SIGKILL), Usage(cpu=2.0), Reason.TIME_LIMIT, Reason.TIME_LIMIT),
        (killed(signal.SIGXCPU), Usage(cpu=1.5), None, Reason.TIME_LIMIT),
        (exited(0), Usage(cpu=2.5), None, Reason.TIME_LIMIT),
        (killed(signal.SIGKILL), Usage(cpu=2.5), Reason.WALL_LIMIT, Reason.TIME_LIMIT),
        (killed(signal.SIGKILL), Usage(cpu=0.1), Reason.WALL_LIMIT, Reason.WALL_LIMIT),
        (None, Usage(cpu=0.3), Reason.WALL_LIMIT, Reason.INTERNAL_ERROR),
    ],
)
def test_classify(status: int | None, usage: Usage, stopped: str | None,
                  reason: str) -> None:
    report = classify(status, LIMITS, usage, 1.25, stopped)
    assert report.reason == reason
    assert (report.time, report.wall_time) == (usage.cpu, 1.25)


def test_classify_reports_exit_code_or_signal() -> None:
    ok = classify(exited(7), Limits(), Usage(memory=4096), 0.5, None)
    assert (ok.exit_code, ok.signal, ok.memory) == (7, None, 4096)
    sig = classify(killed(signal.SIGABRT), Limits(), Usage(), 0.5, None)
    assert (sig.exit_code, sig.signal, sig.core_dump) == (None, signal.SIGABRT, False)


def test_sigxcpu_without_a_cpu_limit_is_just_a_signal() -> None:
    report = classify(killed(signal.SIGXCPU), Limits(), Usage(cpu=9.0), 1.0, None)
    assert report.reason == Reason.SIGNALED


def test_rlimits() -> None:
    pairs = dict(rlimits(Limits(cpu_time=3, file_size=10, open_files=None, stack=20)))
    assert pairs == {resource.RLIMIT_CPU: 4, resource.RLIMIT_FSIZE: 10,
                     resource.RLIMIT_STACK: 20, resource.RLIMIT_CORE: 0}
    assert resource.RLIMIT_CPU not in dict(rlimits(Limits()))
