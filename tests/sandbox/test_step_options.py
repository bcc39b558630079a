"""A step's options on the real bwrap sandbox, cold and warm: exactly the step's environment,
its working directory (never outside the work area), and a CPU rate seen in the cgroup's
throttling and its CPU usage against the wall time."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from khala.executor.stepopts import run_step
from khala.model import Reason, StepOptions, StepReport
from khala.sandbox import core
from khala.sandbox.base import Limits, RunOutcome, RunSpec, SignalBox
from khala.sandbox.bwrap import BwrapSandbox
from khala.sandbox.core import Usage, classify
from khala.sandbox.network import NetworkPolicy
from tests.fixtures.servers import missing
from tests.sandbox.pace import pace


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
                   limits=Limits(wall_time=30 * pace(), memory=256 << 20, pids=64,
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


def test_a_core_file_is_found_in_the_working_directory(sandbox: BwrapSandbox,
                                                        workdir: str) -> None:
    """A step that may dump core writes it where it runs: the report says so from there."""
    outcome = step(sandbox, workdir, "exec python3 -c 'import os; os.abort()'",
                   StepOptions(workdir="crash/here"), core=8 << 20)
    assert outcome.report.signal == 6 and outcome.report.reason == Reason.SIGNALED
    assert outcome.report.core_dump is True
    assert [n for n in os.listdir(os.path.join(workdir, "crash", "here"))
            if n.startswith("core")]


# Two busy processes, each until it has used 0.15 s of CPU: work measured in CPU, not wall
# time, so a loaded machine makes the step slower but never lets it finish unthrottled early.
# (python3 -S: no site module, the least CPU spent starting, which the rate slows down too.)
BUSY = ("for n in 1 2; do python3 -S -c 'import time\n"
        "while time.process_time() < 0.15: pass' & done; wait")
RATE = 0.1


def measured_step(sandbox: BwrapSandbox, workdir: str, options: StepOptions,
                  monkeypatch: pytest.MonkeyPatch) -> tuple[RunOutcome, Usage]:
    """Run BUSY; its outcome and what the backend measured of it (seen on its way to
    `classify`, which turns it into the report)."""
    seen: list[Usage] = []

    def observe(status: int | None, limits: Limits, usage: Usage, wall: float,
                stopped: Reason | None) -> StepReport:
        seen.append(usage)
        return classify(status, limits, usage, wall, stopped)

    monkeypatch.setattr(core, "classify", observe)
    outcome = step(sandbox, workdir, BUSY, options)
    assert len(seen) == 1
    return outcome, seen[0]


@pytest.mark.cgroup  # also on the cgroup v2 guest (tests/guest)
def test_a_cpu_rate_holds_the_step_to_that_share(
        sandbox: BwrapSandbox, workdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two busy processes under a rate of 0.1 CPU: the kernel throttled the step's cgroup
    (cpu.stat's nr_throttled > 0, which never happens without a quota), and the cgroup's CPU
    usage over the wall time stays at most 1.6 × the rate (unlimited, the step would get up to
    2 CPUs, as much as the machine is free).

    No lower bound on the share: below its rate a step gets what the machine's other load
    leaves it (other work shares these cores), so a floor would measure the machine, not the
    quota. The throttle count is what proves the quota acted; the ceiling that it held."""
    outcome, usage = measured_step(sandbox, workdir, StepOptions(cpu_rate=RATE), monkeypatch)
    report = outcome.report
    assert report.reason == Reason.OK, outcome.stderr
    assert report.time >= 0.3, report  # both processes did their work
    assert usage.throttled > 0, usage
    assert report.time / report.wall_time <= RATE * 1.6, report


@pytest.mark.cgroup  # also on the cgroup v2 guest (tests/guest)
def test_without_a_rate_the_step_is_never_throttled(
        sandbox: BwrapSandbox, workdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same step unlimited: its cgroup is never throttled, so the throttle count above
    tells a quota from a busy machine (a warm box's cgroup reused after a rated step starts
    from zero too)."""
    rated, _ = measured_step(sandbox, workdir, StepOptions(cpu_rate=RATE), monkeypatch)
    assert rated.report.reason == Reason.OK, rated.stderr
    outcome, usage = measured_step(sandbox, workdir, StepOptions(), monkeypatch)
    assert outcome.report.reason == Reason.OK, outcome.stderr
    assert outcome.report.time >= 0.3, outcome.report
    assert usage.throttled == 0, usage


def test_a_v1_run_cgroup_joins_the_cpu_controller_on_its_first_rate(
        sandbox: BwrapSandbox) -> None:
    """On cgroup v1 a run cgroup has no directory under the cpu controller until a step asks
    for a rate (warm boxes make one per step); then its processes are moved into a new one,
    which holds the quota and goes with the rest."""
    if sandbox.tree.version != 1 or not sandbox.tree.cpu_rates:
        pytest.skip("cgroup v1 with the cpu controller only")
    cgroup = sandbox.tree.create(None, None)
    waiting = subprocess.Popen(["sleep", "30"])
    try:
        for path in cgroup.procs_files:
            Path(path).write_text(str(waiting.pid))
        assert "cpu" not in cgroup.by_controller  # type: ignore[attr-defined]
        cgroup.set_limits(None, None, 0.25)
        cpu = cgroup.by_controller["cpu"]  # type: ignore[attr-defined]
        assert Path(cpu, "cgroup.procs").read_text().split() == [str(waiting.pid)]
        assert Path(cpu, "cpu.cfs_quota_us").read_text().strip() == str(25_000)
        assert cpu in cgroup.dirs
    finally:
        assert cgroup.remove()
        waiting.wait()
    assert not any(Path(d).exists() for d in cgroup.dirs)


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


@pytest.mark.integration  # builds a sandbox of its own (slirp4netns allowed)
def test_a_step_as_a_host_user_gets_no_network(workdir: str) -> None:
    """slirp4netns runs as the sandbox's own user, whose namespaces it can join; a step that
    runs as a host user the task named is refused the network instead."""
    if shutil.which("slirp4netns") is None:
        missing("slirp4netns is not installed")
    box = BwrapSandbox(network=NetworkPolicy.parse(True, ""))
    try:
        spec = RunSpec(argv=["true"], workdir=workdir, network=True, identity=(4242, 4242))
        assert "only as the sandbox's own user" in box.supports(spec)
        assert box.supports(replace(spec, identity=None)) == ""
    finally:
        box.close()


def test_the_host_name_is_the_steps_own_in_its_uts_namespace(
        sandbox: BwrapSandbox, workdir: str) -> None:
    """Cold and warm pools alike (a warm box's namespace is named once: such a step runs
    cold); the host's own name is untouched and other steps keep Khala's."""
    host = os.uname().nodename
    named = step(sandbox, workdir, "hostname; cat /proc/sys/kernel/hostname",
                 StepOptions(hostname="web-1.example"))
    assert named.report.reason == Reason.OK, named.stderr
    assert named.stdout.decode().split() == ["web-1.example", "web-1.example"]
    plain = step(sandbox, workdir, "cat /proc/sys/kernel/hostname", StepOptions())
    assert plain.stdout.decode().split() == ["khala"]
    assert os.uname().nodename == host


def test_a_running_step_reports_its_cgroup_counters(
        sandbox: BwrapSandbox, workdir: str) -> None:
    """What executor statistics carry of a running step (khala/sandbox/cgstats.py): the
    memory it holds, its processes and their limit, its CPU split, read while it runs."""
    sandbox.prepare_workdir(workdir)
    signals = SignalBox()
    spec = RunSpec(argv=["bash", "-c", "x=$(head -c 30000000 /dev/zero | tr '\\0' a); "
                         "sleep 1000 & sleep 1000 & wait"],
                   workdir=workdir, env={"LANG": "C.UTF-8"}, signals=signals,
                   limits=Limits(wall_time=60 * pace(), memory=256 << 20, pids=64))
    cancel = threading.Event()
    done: list[RunOutcome] = []
    runner = threading.Thread(target=lambda: done.append(sandbox.run(spec, cancel)))
    runner.start()
    try:
        # bash and its two sleeps at least (cold, the sandbox's pid-1 shell too), once the
        # string it holds is made
        seen = until_seen(signals, lambda c: c.get("pids/current", 0) >= 3
                          and c.get("memory/usage", 0) > 20_000_000)
    finally:
        cancel.set()
        runner.join()
    assert seen["pids/limit"] == 64
    assert seen["cpu/total_ns"] > 0 and seen["cpu/user_ns"] + seen["cpu/system_ns"] > 0
    stat = {k.removeprefix("memory/stat/"): v for k, v in seen.items()
            if k.startswith("memory/stat/")}
    assert stat and all(isinstance(v, int) for v in stat.values())
    assert seen["memory/limit"] == 256 << 20
    assert signals.usage() == {}  # detached once the step ended


def until_seen(signals: SignalBox, wanted: Callable[[dict[str, int]], bool]
               ) -> dict[str, int]:
    deadline = time.monotonic() + 60 * pace()
    while time.monotonic() < deadline:
        found = signals.usage().get("counters") or {}
        if wanted(found):
            return found  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"the running step's counters never showed it: {found}")
