"""The leak probe of the hostile suite (tests/sandbox/leaks.py) sees only what the run under test
can have made: sandbox activity elsewhere on the machine (another test process, `make run`)
during the run is not reported, while a leak within the run's scope still is."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import pytest

from khala.config import ExecutorSettings
from khala.executor.runner import run_task
from khala.model import Execute, Status, Task
from khala.sandbox import workarea
from khala.sandbox.base import MIB
from khala.sandbox.bwrap import BwrapSandbox
from tests.sandbox.leaks import LeakProbe, mounts


@pytest.fixture
def work_base() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="khala-leaks-") as root:
        os.chmod(root, 0o711)
        base = os.path.join(root, "work")
        os.mkdir(base, 0o711)
        yield base


def run_ok(box: BwrapSandbox, work_base: str) -> None:
    """A real run with a work area (a tmpfs mounted under `work_base` while it runs)."""
    settings = ExecutorSettings(work_dir=work_base, memory_limit=64 * MIB, pids_limit=64,
                                disk_limit=16 * MIB)
    task = Task(id="leaks", execute=Execute(command="echo ok > out && cat out"))
    status, result = run_task(task, box, settings, threading.Event())
    assert (status, result.execute_output) == (Status.SUCCESS, b"ok\n")


def orphan() -> int:
    """A `sleep` that is not this process's descendant (its parent shell has exited)."""
    shell = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"],
                           capture_output=True, text=True, check=True, timeout=10)
    return int(shell.stdout)


def stop(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def test_other_sandbox_activity_on_the_machine_is_not_reported(
    sandbox: BwrapSandbox, work_base: str
) -> None:
    # A run cgroup a dead process of our pid left behind (pids are reused) is not this run's.
    namesakes = [os.path.join(p, f"run-{os.getpid()}-0-deadbe") for p in sandbox.tree.parents()]
    for path in namesakes:
        os.mkdir(path)
    probe = LeakProbe(sandbox, work_base, exclude_children=set())
    # Meanwhile, outside this run's scope: another executor's work area, its sandbox process
    # and its run cgroup appear.
    other_root = tempfile.mkdtemp(prefix="khala-other-")
    other_area = os.path.join(other_root, f"{workarea.PREFIX}1-1-abcdef")
    os.mkdir(other_area)
    workarea.mount(other_area, MIB)
    stranger = orphan()
    other_cgroups = [os.path.join(p, "run-1-1-abcdef") for p in sandbox.tree.parents()]
    for path in other_cgroups:
        os.mkdir(path)
    try:
        run_ok(sandbox, work_base)
        assert other_area in mounts(["/"]), "the other work area is a real mount on the machine"
        assert probe.alive(stranger)
        assert probe.leaks() == []
    finally:
        stop(stranger)
        for path in other_cgroups + namesakes:
            os.rmdir(path)
        workarea.unmount(other_area)
        os.rmdir(other_area)
        os.rmdir(other_root)


def test_a_leak_within_the_runs_scope_is_still_reported(
    sandbox: BwrapSandbox, work_base: str
) -> None:
    probe = LeakProbe(sandbox, work_base, exclude_children=set())
    run_ok(sandbox, work_base)
    assert probe.leaks() == []
    # What a broken run could leave: a mounted work area, a child, a run cgroup of this process
    # holding a process that escaped the process tree (reparented to init).
    area = os.path.join(work_base, f"{workarea.PREFIX}{os.getpid()}-leak")
    os.mkdir(area)
    workarea.mount(area, MIB)
    child = subprocess.Popen(["sleep", "60"])
    cgroup = sandbox.tree.create(64 * MIB, 16)
    escaped = orphan()
    for procs in cgroup.procs_files:
        with open(procs, "w") as fh:
            fh.write(str(escaped))
    try:
        leaks = probe.leaks()
        assert f"mount {area}" in leaks
        assert f"work dir entry {os.path.basename(area)}" in leaks
        assert f"process {child.pid}" in leaks
        assert f"process {escaped}" in leaks
        assert any(leak.startswith("cgroup ") and cgroup.name in leak for leak in leaks)
    finally:
        child.kill()
        child.wait(10)
        stop(escaped)
        assert cgroup.remove()
        workarea.unmount(area)
        os.rmdir(area)
    assert probe.leaks() == []


@pytest.mark.integration
def test_explain_says_what_a_leftover_process_is() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        text = LeakProbe.explain([f"process {child.pid}", "cgroup /x"])
        first, second = text.splitlines()
        assert first.startswith(f"process {child.pid}: Name=")  # sleep, or pytest before exec
        assert " State=" in first
        assert f"PPid={os.getpid()}" in first and "cgroups=[" in first
        assert second == "cgroup /x"
    finally:
        child.kill()
        child.wait(10)
    assert LeakProbe.explain([f"process {child.pid}"]).endswith("gone (No such file or directory)")
