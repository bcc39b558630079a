"""A step's options on the real bwrap sandbox, cold and warm: exactly the step's environment,
its working directory (never outside the work area), and a CPU rate measured from the cgroup's
CPU usage against the wall time."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from khala.executor.stepopts import run_step
from khala.model import Reason, StepOptions
from khala.sandbox.base import Limits, RunOutcome, RunSpec
from khala.sandbox.bwrap import BwrapSandbox


@pytest.fixture()
def workdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        os.chmod(root, 0o711)
        path = Path(root) / "task"
        path.mkdir()
        yield str(path)


def step(sandbox: BwrapSandbox, workdir: str, script: str, options: StepOptions,
         **limits: object) -> RunOutcome:
    sandbox.prepare_workdir(workdir)
    spec = RunSpec(argv=["bash", "-c", script], workdir=workdir, env={"LANG": "C.UTF-8"},
                   limits=Limits(wall_time=30, memory=256 << 20, pids=64,
                                 **limits))  # type: ignore[arg-type]
    return run_step(sandbox, spec, options, threading.Event())


def test_the_step_sees_exactly_its_environment_and_working_directory(
        sandbox: BwrapSandbox, workdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHALA_EXECUTOR_SECRET", "must-not-leak")
    options = StepOptions(env={"GREETING": "hello there", "LD_PRELOAD": "/nowhere.so",
                               "EMPTY": ""}, workdir="src/deep")
    outcome = step(sandbox, workdir, "pwd; env -0 | sort -z | tr '\\0' '\\n'", options)
    assert outcome.report.reason == Reason.OK, outcome.stderr
    lines = outcome.stdout.decode().splitlines()
    assert lines[0] == "/work/src/deep"
    env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert env["GREETING"] == "hello there" and env["EMPTY"] == ""
    assert env["LD_PRELOAD"] == "/nowhere.so"  # the step's own; bwrap never ran with it
    assert "KHALA_EXECUTOR_SECRET" not in env
    assert set(env) <= {"GREETING", "LD_PRELOAD", "EMPTY", "LANG", "PATH", "HOME", "TMPDIR",
                        "SHLVL", "_", "PWD", "OLDPWD"}, env
    assert os.path.isdir(os.path.join(workdir, "src", "deep"))


@pytest.mark.parametrize("where", ["../outside", "/etc", "a/../../b", "/work/../etc"])
def test_a_working_directory_outside_the_work_area_is_refused(
        sandbox: BwrapSandbox, workdir: str, where: str) -> None:
    outcome = step(sandbox, workdir, "pwd", StepOptions(workdir=where))
    assert outcome.report.reason == Reason.INTERNAL_ERROR
    assert b"outside the work area /work" in outcome.stderr
    assert outcome.stdout == b""


def test_a_symlink_left_by_a_step_is_not_followed_to_the_host(
        sandbox: BwrapSandbox, workdir: str) -> None:
    first = step(sandbox, workdir, "ln -s / escape", StepOptions())
    assert first.report.reason == Reason.OK, first.stderr
    outcome = step(sandbox, workdir, "pwd", StepOptions(workdir="escape/tmp/khala-made-here"))
    assert outcome.report.reason == Reason.INTERNAL_ERROR
    assert b"cannot be made" in outcome.stderr
    assert not os.path.exists("/tmp/khala-made-here")


BUSY = ("for n in 1 2; do timeout 1.5 sh -c 'while :; do :; done' & done; wait")


@pytest.mark.cgroup  # also on the cgroup v2 guest (tests/guest)
def test_a_cpu_rate_gives_the_step_about_that_share(
        sandbox: BwrapSandbox, workdir: str) -> None:
    """Two busy processes for 1.5 s of wall under a rate of 0.25 CPU: the cgroup's CPU usage
    over the wall time is near 0.25 (0.1..0.4). Unlimited, the same step gets up to 2 CPUs
    (as much as the machine is free), far above 0.4."""
    outcome = step(sandbox, workdir, BUSY, StepOptions(cpu_rate=0.25))
    report = outcome.report
    assert report.reason == Reason.OK, outcome.stderr
    assert report.wall_time >= 1.5
    assert 0.1 <= report.time / report.wall_time <= 0.4, report


@pytest.mark.cgroup  # also on the cgroup v2 guest (tests/guest)
def test_the_rate_is_the_run_cgroups_cpu_bandwidth(sandbox: BwrapSandbox) -> None:
    """What the kernel is told: quota = rate × period, back to none when a reused (warm)
    cgroup's next step asks no rate."""
    cgroup = sandbox.tree.create(None, None, 0.25)
    try:
        if sandbox.tree.version == 1:
            cpu = cgroup.by_controller["cpu"]  # type: ignore[attr-defined]
            quota, period = (Path(cpu, f"cpu.cfs_{n}_us").read_text().strip()
                             for n in ("quota", "period"))
            assert (quota, period) == (str(25_000), str(100_000))
            cgroup.set_limits(None, None, None)
            assert Path(cpu, "cpu.cfs_quota_us").read_text().strip() == "-1"
        else:
            assert Path(cgroup.dirs[0], "cpu.max").read_text().split() == ["25000", "100000"]
            cgroup.set_limits(None, None, None)
            assert Path(cgroup.dirs[0], "cpu.max").read_text().split() == ["max", "100000"]
    finally:
        assert cgroup.remove()


def test_the_network_is_refused_where_the_operator_does_not_allow_it(
        sandbox: BwrapSandbox, workdir: str) -> None:
    outcome = step(sandbox, workdir, "echo ran", StepOptions(network=True))
    assert outcome.report.reason == Reason.INTERNAL_ERROR
    assert b"does not allow the network" in outcome.stderr and outcome.stdout == b""
