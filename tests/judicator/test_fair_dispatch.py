"""Fair share and priorities on a real cluster (one judicator, one executor with 2 slots)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration  # starts its own cluster


@pytest.fixture
def fc(tmp_path: Any) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start_judicator()
        c.start_executor(slots=2)
        c.start_gateway()
        yield c
    finally:
        c.stop()


def batch(c: Cluster, user: int, count: int, command: str, priority: int = 0) -> list[str]:
    tasks = [{"user": user, "priority": priority, "compile": {"command": "true"},
              "execute": {"command": command}} for _ in range(count)]
    r = requests.post(f"{c.gateway_url}/api/v2/batches", json={"tasks": tasks}, timeout=60)
    assert r.status_code == 200, r.text
    return [o["data"]["seed_id"] for o in r.json()["data"]]


def task(c: Cluster, task_id: str) -> dict[str, Any]:
    return requests.get(f"{c.gateway_url}/api/v2/tasks/{task_id}",  # type: ignore[no-any-return]
                        timeout=10).json()["data"]


def test_a_newcomer_is_not_stuck_behind_a_heavy_user(fc: Cluster) -> None:
    heavy = batch(fc, 1, 200, "sleep 0.05")
    time.sleep(0.5)  # A's tasks are flowing
    light = batch(fc, 2, 5, "true")
    for task_id in light:
        done = task(fc, task_id)
        deadline = time.monotonic() + 60
        while not done["done"] and time.monotonic() < deadline:
            time.sleep(0.05)
            done = task(fc, task_id)
        assert done["status"] == "success", done
    last = task(fc, heavy[-1])
    print(f"\nB's 5 tasks done; A's 200th is {last['status']}")
    assert last["status"] == "pending"  # not started: B went first among equals
    final = requests.get(f"{fc.gateway_url}/api/v2/tasks/{heavy[-1]}?wait=60", timeout=70)
    assert final.json()["data"]["status"] == "success"


def test_priorities_order_dispatch(fc: Cluster) -> None:
    batch(fc, 1, 2, "sleep 1")  # both slots busy
    time.sleep(0.3)
    low = batch(fc, 1, 4, "sleep 0.3", priority=0)  # ends well after any high one
    high = batch(fc, 1, 4, "true", priority=10)
    ends = {}
    for task_id in low + high:
        r = requests.get(f"{fc.gateway_url}/api/v2/tasks/{task_id}?wait=30", timeout=40)
        data = r.json()["data"]
        assert data["status"] == "success"
        ends[task_id] = data["report_time"]
    assert max(ends[t] for t in high) <= min(ends[t] for t in low), ends
