"""What a step reports beyond its limits: getrusage's fields for its process tree, the host pid
of its command, core files when asked, and steps as another host user — on the bwrap sandbox
cold and warm (the same fields both ways) and on the plain backend; and the executor's runner
refusing ids its operator does not allow (khala/rules/identity.py)."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from khala.config import ExecutorSettings
from khala.executor.runner import run_task
from khala.model import Compile, Execute, Reason, Rusage, Status, StepReport, Task
from khala.sandbox.base import MIB, Limits, RunSpec, Sandbox, SignalBox
from khala.sandbox.bwrap import BwrapSandbox
from khala.sandbox.plain import PlainSandbox

pytestmark = pytest.mark.integration

# Touches 96 MiB, spins the CPU, sleeps three times and waits for a child of its own.
WORKLOAD = ("import os, time, subprocess\n"
            "block = bytearray(96 * 1024 * 1024)\n"
            "for i in range(0, len(block), 4096): block[i] = 1\n"
            "total = sum(range(3_000_000))\n"
            "for _ in range(3): time.sleep(0.01)\n"
            "subprocess.run(['true'])\n")
OTHER = (1234, 1235)  # an unprivileged identity no account on the host uses


@pytest.fixture()
def workdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="khala-rusage-") as root:
        os.chmod(root, 0o711)
        path = os.path.join(root, "task")
        os.mkdir(path)
        yield path


@pytest.fixture(scope="module")
def plain() -> Iterator[PlainSandbox]:
    box = PlainSandbox()
    yield box
    box.close()


def step(box: Sandbox, workdir: str, argv: list[str], identity: tuple[int, int] | None = None,
         signals: SignalBox | None = None, cancel: threading.Event | None = None,
         **limits: object) -> tuple[bytes, bytes, StepReport]:
    box.prepare_workdir(workdir, identity)
    spec = RunSpec(argv=argv, workdir=workdir, identity=identity, signals=signals,
                   limits=Limits(wall_time=60, memory=512 * MIB, pids=64, **limits))  # type: ignore[arg-type]
    outcome = box.run(spec, cancel or threading.Event())
    return outcome.stdout, outcome.stderr, outcome.report


def check_rusage(report: StepReport) -> Rusage:
    usage = report.rusage
    assert usage is not None, report
    for f in fields(Rusage):  # every field measured, of its type
        assert isinstance(getattr(usage, f.name), float if f.name in ("utime", "stime") else int)
    assert usage.utime > 0 and usage.minflt > 0
    assert usage.nvcsw >= 3  # the three sleeps, at least
    return usage


def test_the_tree_is_measured_cold_and_warm(sandbox: BwrapSandbox, workdir: str) -> None:
    _, err, report = step(sandbox, workdir, ["python3", "-c", WORKLOAD])
    assert report.reason == Reason.OK, err
    usage = check_rusage(report)
    # the CPU seconds are the cgroup's, split in user and system: they add up to its total
    assert usage.utime + usage.stime == pytest.approx(report.time, abs=2e-6)
    assert usage.maxrss == report.memory >= 96 * MIB


def test_a_child_the_command_waited_for_counts(sandbox: BwrapSandbox, workdir: str) -> None:
    """The work happens in a grandchild of the step's shell: still counted."""
    _, _, report = step(sandbox, workdir, ["bash", "-c", f"python3 -c '{WORKLOAD}'; true"])
    assert report.reason == Reason.OK
    check_rusage(report)


def test_plain_measures_with_wait4(plain: PlainSandbox, workdir: str) -> None:
    _, _, report = step(plain, workdir, ["python3", "-c", WORKLOAD])
    usage = check_rusage(report)
    assert usage.maxrss >= 96 * MIB and report.time == pytest.approx(usage.utime + usage.stime)


def test_the_pid_is_the_commands_on_the_host(sandbox: BwrapSandbox, workdir: str) -> None:
    box, cancel, seen = SignalBox(), threading.Event(), []

    def watch() -> None:  # while it runs: the pid the executor would report
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seen:
            pid = box.usage().get("pid")
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if pid else b""
            except OSError:
                cmdline = b""
            if cmdline == b"sleep\x0030\x00":
                status = Path(f"/proc/{pid}/status").read_text()
                seen.append((pid, "\nUid:\t65534\t" in status))
            time.sleep(0.01)
        cancel.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    _, _, report = step(sandbox, workdir, ["sleep", "30"], signals=box, cancel=cancel)
    watcher.join()
    assert seen and seen[0][1], seen  # found, running as the sandbox user
    assert report.pid == seen[0][0] and report.reason == Reason.CANCELLED


@pytest.mark.parametrize("core", [0, 8 * MIB])
def test_core_files_only_when_asked(sandbox: BwrapSandbox, workdir: str, core: int) -> None:
    _, _, report = step(sandbox, workdir, ["python3", "-c", "import os; os.abort()"],
                        core=core)
    assert report.signal == 6 and report.reason == Reason.SIGNALED
    assert report.core_dump is bool(core)
    made = [n for n in os.listdir(workdir) if n.startswith("core")]
    assert bool(made) is bool(core)
    for name in made:
        assert os.path.getsize(os.path.join(workdir, name)) <= core


def test_a_step_runs_as_another_allowed_user(sandbox: BwrapSandbox, workdir: str) -> None:
    out, err, report = step(sandbox, workdir, ["bash", "-c", "id -u; id -g; id -G; touch f"],
                            identity=OTHER)
    assert report.reason == Reason.OK, err
    assert out == b"1234\n1235\n1235\n"
    assert os.stat(os.path.join(workdir, "f"))[4:6] == OTHER
    check = step(sandbox, workdir, ["python3", "-c", WORKLOAD], identity=OTHER)[2]
    check_rusage(check)  # the same measures as the sandbox's own user


def test_root_is_never_a_steps_user(sandbox: BwrapSandbox, plain: PlainSandbox,
                                    workdir: str) -> None:
    for box in (sandbox, plain):
        with pytest.raises(Exception, match="never runs as root"):
            box.prepare_workdir(workdir, (0, 1000))
        spec = RunSpec(argv=["id"], workdir=workdir, identity=(1000, 0))
        outcome = box.run(spec, threading.Event())
        assert outcome.report.reason == Reason.INTERNAL_ERROR and outcome.stdout == b""


def test_plain_runs_as_another_user(plain: PlainSandbox, workdir: str) -> None:
    out, _, report = step(plain, workdir, ["bash", "-c", "id -u; id -g; touch f"],
                          identity=OTHER)
    assert (out, report.reason) == (b"1234\n1235\n", Reason.OK)
    assert os.stat(os.path.join(workdir, "f"))[4:6] == OTHER


# ----------------------------------------------------------------------------- the runner


def task(**execute: object) -> Task:
    return Task(id="a" * 24, compile=Compile(command="true"),
                execute=Execute(command="id -u; id -g", timeout=30, **execute))  # type: ignore[arg-type]


def settings(base: str, **extra: object) -> ExecutorSettings:
    return ExecutorSettings(work_dir=base, memory_limit=256 * MIB, **extra)  # type: ignore[arg-type]


def test_the_runner_runs_only_ids_its_operator_allows(sandbox: BwrapSandbox,
                                                      workdir: str) -> None:
    allowed = settings(workdir, run_users="guest=1234:1235")
    status, result = run_task(task(run_uid=1234, run_gid=1235), sandbox, allowed,
                              threading.Event())
    assert (status, result.execute_output) == (Status.SUCCESS, b"1234\n1235\n")
    refused = ((settings(workdir), {"run_uid": 1234}),  # no table here: nobody allowed
               (allowed, {"run_uid": 4321}), (allowed, {"run_gid": 0}))
    for policy, asked in refused:
        status, result = run_task(task(**asked), sandbox, policy, threading.Event())
        assert status == Status.UNKNOWN_ERROR, (asked, result)
        assert result.compile_error.startswith(b"[khala] refused: run_"), result.compile_error


def test_the_runner_asks_for_a_core_file_within_the_policy(sandbox: BwrapSandbox,
                                                           workdir: str) -> None:
    crash = Execute(command="exec python3 -c 'import os; os.abort()'", timeout=30,
                    core_limit=2 * MIB)
    made = Task(id="b" * 24, compile=Compile(command="true"), execute=crash)
    status, result = run_task(made, sandbox, settings(workdir), threading.Event())
    report = result.execute_report
    assert status == Status.RUN_FAILED and report is not None
    assert (report.signal, report.core_dump) == (6, True)
    status, result = run_task(made, sandbox, settings(workdir, max_core_limit=0),
                              threading.Event())
    assert status == Status.RUN_FAILED and result.execute_report is not None
    assert result.execute_report.core_dump is False  # the policy clamps it to none
