"""Task ids through a real cluster: every way of adding a task (the seed API, API v2, a batch)
gives a random id of the ObjectId shape (24 hex digits) — not the next of a counter, so one id
tells nothing of the others — and nothing orders by id: listings (seed and v2, both ways) and
the dispatch to executors follow the time each task was added."""

from __future__ import annotations

import re
from typing import Any

import requests

from khala.discovery.static import StaticDiscovery
from khala.model import Execute, Task
from khala.rpc.client import JudicatorClient
from tests.fixtures.cluster import Cluster

HEX24 = re.compile(r"[0-9a-f]{24}")


def v2_body(index: int) -> dict[str, Any]:
    return {"compile": {"command": "true"},
            "execute": {"command": f"echo {index}; date +%s%N", "timeout": 10}}


def add_every_way(c: Cluster, each: int) -> list[str]:
    """`each` tasks through the seed API, API v2 and a batch, one after another."""
    ids = [c.submit(execute_command=f"echo {i}; date +%s%N") for i in range(each)]
    for i in range(each):
        reply = requests.post(f"{c.gateway_url}/api/v2/tasks", json=v2_body(each + i), timeout=30)
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["data"]["seed_id"])
    batch = {"tasks": [v2_body(2 * each + i) for i in range(each)]}
    reply = requests.post(f"{c.gateway_url}/api/v2/batches", json=batch, timeout=30)
    assert reply.status_code == 200, reply.text
    ids += [item["data"]["seed_id"] for item in reply.json()["data"]]
    return ids


def test_ids_are_random_and_every_order_is_by_add_time(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator()
    c.start_gateway()
    ids = add_every_way(c, 8)
    assert all(HEX24.fullmatch(i) for i in ids), ids
    # An ObjectId is 4 bytes of seconds, 5 of the process and a 3-byte counter: ids made in one
    # second by one judicator shared their first 9 bytes and followed each other by 1.
    assert len({i[:18] for i in ids}) == len(ids), ids
    assert ids != sorted(ids) and ids != sorted(ids, reverse=True), ids

    newest = requests.get(f"{c.gateway_url}/api/v2/tasks?limit=50", timeout=30).json()["data"]
    assert [t["seed_id"] for t in newest] == ids[::-1]
    oldest = requests.get(f"{c.gateway_url}/api/task/list",
                          params={"old_to_new": 1, "limit": 50}, timeout=30).json()
    assert [t["id"] for t in oldest["tasks"]] == ids, oldest
    paged: list[str] = []  # v2's cursor pages (add time, then id): each task once, in order
    url = f"{c.gateway_url}/api/v2/tasks?limit=5"
    while url:
        page = requests.get(url, timeout=30).json()
        paged += [t["seed_id"] for t in page["data"]]
        url = page["links"]["next"] and c.gateway_url + page["links"]["next"]
    assert paged == ids[::-1]

    # One slot, nothing taken ahead: the executor runs them one by one, oldest first.
    c.start_executor(slots=1, ahead=0)
    started = []
    for task_id in ids:
        task = c.wait_done(task_id)
        assert task["status"] == 5, task
        started.append(int(task["result"]["execute_output"].split()[1]))
    assert started == sorted(started), started


def test_ids_differ_between_judicators_started_together(cluster_factory: Any) -> None:
    """Two judicators on one store, each adding tasks in the same second."""
    c = cluster_factory()
    c.start_judicator()
    c.start_judicator()
    clients = [JudicatorClient(StaticDiscovery([f"127.0.0.1:{j.port}"]), 10.0)
               for j in c.judicators]
    ids = []
    try:
        for _ in range(5):
            for client in clients:
                ids.append(client.add(Task(execute=Execute(command="true"))))
    finally:
        for client in clients:
            client.close()
    assert all(HEX24.fullmatch(i) for i in ids), ids
    assert len({i[:18] for i in ids}) == len(ids), ids
