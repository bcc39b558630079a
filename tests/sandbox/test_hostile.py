"""The hostile-program suite: every case of tests/sandbox/cases/ through the executor's real code
path (`khala.executor.runner.run_task`) on the bwrap sandbox, then a leak and health check; on
the host's root and, once `make images` has built it, in the judge image (its steps' `/` the
image's, read-only: docs/images.md)."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from khala.config import ExecutorSettings
from khala.executor.runner import run_task
from khala.images.tarball import unpack
from khala.model import Execute, Status, Task
from khala.sandbox.base import MIB
from khala.sandbox.bwrap import BwrapSandbox
from khala.sandbox.fstree import remove_tree
from tests.judgeimage import image as judge_image
from tests.sandbox.hostile import build_task, case_names, check_result, in_image, load_case
from tests.sandbox.leaks import LeakProbe
from tests.sandbox.pace import pace

SECRET = "khala-secret-of-another-task-7f3a"
# The cases the cgroup limits stop (pids, memory incl. tmpfs pages): also run on cgroup v2 in
# the guest suite (tests/guest). Not busy_loop_many_processes: its bound is the watcher's
# lateness in CPU seconds (0.2 s), a host figure that no measured pace scales faithfully; the
# guest checks CPU time over processes with test_bwrap.py's cgroup tests instead.
CGROUP_CASES = {"fork_bomb_python", "memory_bomb_python", "fill_tmp_memory"}
MARKER = "khala-host-marker-91c2"


@pytest.fixture(scope="session", params=["host-root", "judge-image"])
def root(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The root the cases' steps see: the host's (None) or the judge image unpacked as an
    executor unpacks it (once per session: gigabytes)."""
    if request.param == "host-root":
        yield None
        return
    if not judge_image.present():
        pytest.skip(judge_image.MISSING)
    base = tempfile.mkdtemp(prefix="khala-hostile-image-")
    os.chmod(base, 0o711)
    dest = os.path.join(base, "root")
    os.mkdir(dest)
    try:
        unpack(judge_image.JUDGE_TAR, dest, 1 << 40)
        yield dest
    finally:
        remove_tree(base)


@pytest.fixture(scope="module")
def host() -> Iterator[dict[str, str]]:
    """A work dir root, another task's dir with a secret, a host process that must survive."""
    with tempfile.TemporaryDirectory(prefix="khala-hostile-") as root:
        os.chmod(root, 0o711)
        work_base = os.path.join(root, "work")
        other = os.path.join(root, "other-task")
        os.mkdir(work_base, 0o711)
        os.mkdir(other, 0o755)
        Path(other, "secret.txt").write_text(SECRET)
        os.chmod(os.path.join(other, "secret.txt"), 0o644)  # readable: only isolation hides it
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", MARKER])
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            yield {"work_base": work_base, "other_task": other, "host_pid": str(sleeper.pid),
                   "executor_pid": str(os.getpid()), "host_port": str(listener.getsockname()[1])}
        finally:
            listener.close()
            sleeper.kill()
            sleeper.wait(10)


def settings_for(work_base: str, **extra: Any) -> ExecutorSettings:
    return ExecutorSettings(work_dir=work_base, memory_limit=64 * MIB, pids_limit=64,
                            output_limit=1 * MIB, result_limit=64 * 1024, **extra)


def run(task: Task, box: BwrapSandbox, settings: ExecutorSettings,
        cancel_after: float | None = None, root: str | None = None) -> tuple[int, object]:
    cancel = threading.Event()
    timer = threading.Timer(cancel_after, cancel.set) if cancel_after else None
    if timer:
        timer.start()
    try:
        return run_task(task, box, settings, cancel,
                        roots={"compile": root, "execute": root} if root else None)
    finally:
        if timer:
            timer.cancel()


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.cgroup) if n in CGROUP_CASES else n for n in case_names()])
def test_case(name: str, sandbox: BwrapSandbox, host: dict[str, str], root: str | None) -> None:
    case = load_case(name) if root is None else in_image(load_case(name))
    settings = settings_for(host["work_base"], **case.doc.get("settings", {}))
    probe = LeakProbe(sandbox, host["work_base"], exclude_children={int(host["host_pid"])})
    task = build_task(case, host, pace())
    cancel_after = case.doc.get("cancel_after")
    status, result = run(task, sandbox, settings, cancel_after and cancel_after * pace(), root)
    problems = check_result(case, status, result, host, pace())  # type: ignore[arg-type]
    assert not problems, f"{name}: {problems}\nresult: {result}"
    assert Path(host["other_task"], "secret.txt").read_text() == SECRET
    assert probe.alive(int(host["host_pid"])), "the host process was killed"
    leaks = probe.leaks()
    assert leaks == [], f"{name} left something behind:\n{probe.explain(leaks)}"
    # still healthy: a trivial task succeeds right after
    status, result = run(Task(id="healthy", execute=Execute(command="echo ok")), sandbox, settings,
                         root=root)
    assert (status, result.execute_output) == (Status.SUCCESS, b"ok\n")  # type: ignore[attr-defined]


def test_suite_has_enough_cases() -> None:
    assert len(case_names()) >= 30


@pytest.mark.cgroup
def test_cancel_is_prompt(sandbox: BwrapSandbox, host: dict[str, str]) -> None:
    task = Task(id="cancel", execute=Execute(command="sleep 60", timeout=math.ceil(30 * pace())))
    started = time.monotonic()
    status, result = run(task, sandbox, settings_for(host["work_base"]),
                         cancel_after=0.3 * pace())
    assert time.monotonic() - started < 1.5 * pace()
    assert result.execute_report.reason == "cancelled"  # type: ignore[attr-defined]
    assert status == Status.RUN_FAILED
