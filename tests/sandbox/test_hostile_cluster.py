"""The hostile-program suite end to end: every case submitted over Thrift to a real judicator
and run by a real `khala executor` process on the bwrap sandbox. Unsafe zips must be refused at
`add`; cancel cases are cancelled through the judicator. Afterwards the executor is still alive,
still runs tasks, and left no run cgroup behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from khala.rpc import convert
from khala.sandbox.cgroup_detect import detect
from tests.fixtures.cluster import Cluster
from tests.sandbox.hostile import build_task, case_names, check_result, load_case, refused

pytestmark = pytest.mark.integration  # a real judicator and executor

SECRET = "khala-secret-of-another-task-e2e-4d1b"
MARKER = "khala-host-marker-e2e-77a0"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster = Cluster(tmp_path_factory.mktemp("hostile-e2e"), sandbox="bwrap")
    root = tempfile.mkdtemp(prefix="khala-hostile-e2e-")
    os.chmod(root, 0o711)
    other = os.path.join(root, "other-task")
    os.mkdir(other, 0o755)
    Path(other, "secret.txt").write_text(SECRET)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", MARKER])
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        cluster.start_judicator()
        work = os.path.join(root, "work")
        executor = cluster.start_executor(
            slots=1,
            work_dir=work,
            memory_limit=64 * MIB,
            pids_limit=64,
            output_limit=1 * MIB,
            result_limit=64 * 1024,
        )
        rpc = cluster.rpc(timeout=30)
        subst = {
            "work_base": work,
            "other_task": other,
            "host_pid": str(sleeper.pid),
            "executor_pid": str(executor.pid),
            "host_port": str(listener.getsockname()[1]),
            "marker": MARKER,
        }
        yield {"cluster": cluster, "rpc": rpc, "executor": executor, "subst": subst}
    finally:
        cluster.stop()
        listener.close()
        sleeper.kill()
        sleeper.wait(10)
        subprocess.run(["rm", "-rf", root], check=False)


def wait_done(rpc: Any, task_id: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task = rpc.get(task_id).task
        if task.done:
            return task
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} not done in {seconds}s")


@pytest.mark.parametrize("name", case_names(shared_settings=True))
def test_case_through_the_cluster(name: str, e2e: dict[str, Any]) -> None:
    case = load_case(name)
    rpc, subst = e2e["rpc"], e2e["subst"]
    wire = convert.task_to_thrift(build_task(case, subst))
    wire.id, wire.user = None, 1
    added = rpc.add(wire)
    if refused(case):
        # A hostile zip never reaches an executor: the judicator refuses it.
        assert added.result == 4, f"{name}: unsafe zip accepted"
        return
    assert added.result == 0, added
    if case.doc.get("cancel_after"):
        time.sleep(case.doc["cancel_after"])
        assert rpc.cancel(added.id) == 0
        assert (wait_done(rpc, added.id).status) == 7
    else:
        task = wait_done(rpc, added.id)
        result = convert.result_from_thrift(task.result)
        problems = check_result(case, task.status, result, subst)  # type: ignore[arg-type]
        assert not problems, f"{name}: {problems}\nresult: {result}"
    assert Path(subst["other_task"], "secret.txt").read_text() == SECRET
    assert os.path.exists(f"/proc/{subst['host_pid']}"), "the host process was killed"
    assert e2e["executor"].alive(), f"executor died:\n{e2e['executor'].log()[-2000:]}"


def test_executor_healthy_and_clean_after_the_suite(e2e: dict[str, Any]) -> None:
    rpc = e2e["rpc"]
    wire = convert.task_to_thrift(build_task(load_case("compile_and_run_c"), e2e["subst"]))
    wire.id, wire.user = None, 1
    task = wait_done(rpc, rpc.add(wire).id)
    assert task.status == 5
    # A running executor keeps prepared warm sandboxes (each with its cgroup); once it has
    # stopped, nothing of its runs may remain.
    executor = e2e["executor"]
    executor.signal(signal.SIGTERM)
    assert executor.wait(60) == 0, "the executor did not stop cleanly"
    prefix = f"run-{executor.pid}-"
    deadline = time.monotonic() + 10
    while detect().leftovers(prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert detect().leftovers(prefix) == []
