"""Safe defaults through real nodes: a task asking no time limit (0 / none) runs under the
limits policy's default wall and CPU time, a larger one is capped to the maximum, fractions of
a second are kept, and API v2 refuses a task with nothing to run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration
# A loaded test machine may give a busy loop a fraction of a core: the CPU default is small
# against the wall limit it runs under, so only the CPU limit can end it.
POLICY = {"default_timeout": 1.5, "max_timeout": 15, "default_cpu_limit": 0.5}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("defaults"))
    try:
        built.start_judicator(**POLICY)
        built.start_executor(slots=2, **POLICY)
        built.start_gateway(**POLICY)
        yield built
    finally:
        built.stop()


def run(cluster: Cluster, command: str, **execute: Any) -> dict[str, Any]:
    body = {"compile": {"command": "true"}, "execute": {"command": command, **execute}}
    reply = requests.post(f"{cluster.gateway_url}/api/v2/tasks", json=body, timeout=30)
    assert reply.status_code == 201, reply.text
    ref = reply.json()["data"]["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = requests.get(f"{cluster.gateway_url}/api/v2/tasks/{ref}?wait=10",
                            timeout=30).json()["data"]
        if task["done"]:
            return task  # type: ignore[no-any-return]
    raise AssertionError(f"task {ref} not done\n{cluster.logs()}")


def test_no_time_limit_asked_gets_the_default(strict: Cluster) -> None:
    task = run(strict, "sleep 1000")  # without a default this would hold a slot for ever
    assert task["status"] == "run_failed" and task["execute"]["timeout"] == 0
    assert task["result"]["execute"]["reason"] == "wall_limit"
    spin = run(strict, "while :; do :; done", timeout=15)  # CPU: the default CPU limit
    assert spin["result"]["execute"]["reason"] == "time_limit", spin["result"]


def test_a_larger_timeout_is_capped_and_fractions_kept(strict: Cluster) -> None:
    capped = run(strict, "sleep 1000", timeout=100000)
    assert capped["execute"]["timeout"] == 100000  # shown as asked, run under the maximum
    assert capped["result"]["execute"]["reason"] == "wall_limit"
    half = run(strict, "sleep 1000", timeout=0.5, cpu_limit=0.25)
    assert (half["execute"]["timeout"], half["execute"]["cpu_limit"]) == (0.5, 0.25)
    assert half["result"]["execute"]["reason"] == "wall_limit"
    quick = run(strict, "echo fine", timeout=1.25)
    assert quick["status"] == "success" and quick["execute"]["timeout"] == 1.25


def test_nothing_to_run_is_refused_and_the_policy_is_listed(strict: Cluster) -> None:
    for execute in ({}, {"command": "  "}):
        reply = requests.post(f"{strict.gateway_url}/api/v2/tasks", timeout=30,
                              json={"compile": {"command": "true"}, "execute": execute})
        assert reply.status_code == 422
        assert "execute.command is required" in reply.json()["errors"][0]["detail"]
    limits = requests.get(f"{strict.gateway_url}/api/v2/limits", timeout=30).json()["data"]
    assert (limits["default_timeout"], limits["max_timeout"], limits["default_cpu_limit"]) == (
        1.5, 15.0, 0.5)
    # The seed API still takes 0 ("no timeout") and runs it under the default.
    seed = strict.submit(execute_command="sleep 1000", execute_timeout=0)
    done = strict.wait_done(seed, timeout=120)
    assert done["execute"]["execute_timeout"] == 0 and done["status"] == 4
    assert done["result"]["execute"]["reason"] == "wall_limit"
