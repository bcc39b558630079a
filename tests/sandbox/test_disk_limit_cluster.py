"""execute_disk_limit end to end: a task asks the size of its work area
through the seed API, API v2 or Thrift; a real judicator stores it and a real `khala executor`
on the bwrap sandbox mounts a tmpfs of that size. A step that writes past it gets ENOSPC (the
task fails visibly); the same task without the field runs in the executor's default work area.
The field comes back from every API as sent; bad values and values above max_disk_limit are
refused with result 4 (HTTP 422 on API v2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from khala.model import Compile, Execute, Task
from khala.rpc import convert
from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration  # a real judicator, executor and gateway

MIB = 1024 * 1024
MAX_DISK = 64 * MIB  # the limits policy of the judicator and the gateway
DEFAULT_DISK = 16 * MIB  # the executor's disk_limit
# Writes 4 MiB into the work dir: fails (ENOSPC, exit 1) in a 1 MiB work area.
WRITE_4MIB = "head -c 4194304 /dev/zero > big && ls -l big | cut -d' ' -f5"
NO_SPACE = "No space left on device"


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("disk-limit"), sandbox="bwrap")
    try:
        cluster.start_judicator(max_disk_limit=MAX_DISK)
        cluster.start_executor(slots=2, disk_limit=DEFAULT_DISK, max_disk_limit=MAX_DISK)
        cluster.start_gateway(max_disk_limit=MAX_DISK)
        yield cluster
    finally:
        cluster.stop()


def seed_form(**fields: Any) -> dict[str, Any]:
    return {"user": 0, "compile_command": "true", "compile_timeout": 10, "execute_input": "",
            "execute_command": WRITE_4MIB, "execute_timeout": 20, "execute_standard": "",
            **fields}


def test_seed_api_a_small_work_area_fails_the_task_and_the_default_runs_it(
        disk: Cluster) -> None:
    small = disk.submit(**seed_form(execute_disk_limit=str(MIB)))
    default = disk.submit(**seed_form())
    task = disk.wait_done(small)
    assert task["status"] == 4, task  # Run failed
    assert task["result"]["execute"]["reason"] == "nonzero_exit", task["result"]
    assert NO_SPACE in task["result"]["execute_error"], task["result"]
    assert task["execute"]["disk_limit"] == MIB  # comes back as sent
    task = disk.wait_done(default)
    assert task["status"] == 5, task
    assert task["result"]["execute_output"] == "4194304\n", task["result"]
    assert "disk_limit" not in task["execute"]  # not asked: the key an old client knows only


@pytest.mark.parametrize("value", ["-1", "1.5", "0", "4MiB", str(MAX_DISK + 1), str(2**62 + 1)])
def test_seed_api_refuses_bad_and_too_large_values(disk: Cluster, value: str) -> None:
    answer = requests.post(f"{disk.gateway_url}/api/task",
                           data=seed_form(execute_disk_limit=value), timeout=30).json()
    # The seed API's answer keeps the original shape ({result, id}) and adds the reason,
    # naming the field (the parser's message, tests/gateway/test_forms.py).
    assert answer.pop("error").startswith("execute_disk_limit "), answer
    assert answer == {"result": 4, "id": None}, answer


def v2_body(**execute: Any) -> dict[str, Any]:
    return {"compile": {"command": "true", "timeout": 10},
            "execute": {"command": WRITE_4MIB, "timeout": 20, **execute}}


def v2_wait(cluster: Cluster, task_id: str) -> dict[str, Any]:
    reply = requests.get(f"{cluster.gateway_url}/api/v2/tasks/{task_id}", params={"wait": 30},
                         timeout=60)
    assert reply.status_code == 200, reply.text
    task = reply.json()["data"]
    assert task["done"], task
    return task  # type: ignore[no-any-return]


def test_api_v2_round_trip_and_outcome(disk: Cluster) -> None:
    tasks = f"{disk.gateway_url}/api/v2/tasks"
    reply = requests.post(tasks, json=v2_body(disk_limit=MIB), timeout=30)
    assert reply.status_code == 201, reply.text
    assert reply.json()["data"]["execute"]["disk_limit"] == MIB
    task = v2_wait(disk, reply.json()["data"]["id"])
    assert task["execute"]["disk_limit"] == MIB
    assert task["status"] == "run_failed", task
    assert task["result"]["execute"]["reason"] == "nonzero_exit", task["result"]
    plain = requests.post(tasks, json=v2_body(), timeout=30).json()["data"]
    task = v2_wait(disk, plain["id"])
    assert (task["status"], task["execute"]["disk_limit"]) == ("success", None), task
    for bad in (0, -1, 1.5, "lots", MAX_DISK + 1):
        reply = requests.post(tasks, json=v2_body(disk_limit=bad), timeout=30)
        assert reply.status_code == 422, (bad, reply.text)
        assert "disk_limit" in reply.text, reply.text  # the detail names the field


def thrift_task(disk_limit: int | None) -> Any:
    wire = convert.task_to_thrift(Task(
        user=1, compile=Compile(command="true", timeout=10),
        execute=Execute(command=WRITE_4MIB, timeout=20, disk_limit=disk_limit)))
    wire.id = None
    return wire


def test_thrift_round_trip_and_refusal(disk: Cluster) -> None:
    rpc = disk.rpc(timeout=30)
    added = rpc.add(thrift_task(MIB))
    assert added.result == 0, added
    assert rpc.get(added.id).task.execute.disk_limit == MIB
    deadline = time.monotonic() + 60
    while not (task := rpc.get(added.id).task).done:
        assert time.monotonic() < deadline, "not done in 60 s"
        time.sleep(0.05)
    assert task.execute.disk_limit == MIB and task.status == 4
    assert NO_SPACE in convert.result_from_thrift(task.result).execute_error.decode()
    assert rpc.get(rpc.add(thrift_task(None)).id).task.execute.disk_limit is None
    for bad in (0, -5, MAX_DISK + 1):
        assert rpc.add(thrift_task(bad)).result == 4, bad


def test_a_judged_tasks_cases_run_in_its_work_area(disk: Cluster) -> None:
    """Each case of a judged task gets a work area of the task's size (its build keeps the
    executor's disk_limit)."""
    tasks = f"{disk.gateway_url}/api/v2/tasks"
    case = {"cases": [{"input": "", "standard": "4194304\n"}]}
    small = requests.post(tasks, json=v2_body(disk_limit=MIB, **case), timeout=30)
    plain = requests.post(tasks, json=v2_body(**case), timeout=30)
    assert small.status_code == plain.status_code == 201, (small.text, plain.text)
    judged = v2_wait(disk, small.json()["data"]["id"])["result"]["judgement"]
    assert judged["verdict"] == "runtime_error", judged
    assert NO_SPACE in judged["cases"][0]["error"], judged
    judged = v2_wait(disk, plain.json()["data"]["id"])["result"]["judgement"]
    assert judged["verdict"] == "accepted", judged
