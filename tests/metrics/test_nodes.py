"""Metrics and executor statistics through real nodes: /metrics of the gateway (two gunicorn
workers, added up), the judicator and the executor parsed with prometheus_client's parser
before and after real tasks; the statistics of a running memory-hungry task show its memory
growing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from khala.cli.up import free_port
from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    c = Cluster(tmp_path_factory.mktemp("metrics"))
    jport, eport = free_port(), free_port()
    try:
        c.start_judicator(metrics_listen=f"127.0.0.1:{jport}")
        c.start_executor(slots=2, metrics_listen=f"127.0.0.1:{eport}", name="exec-m", ahead=1)
        c.start_gateway(workers=2)
        yield {"cluster": c, "judicator": f"http://127.0.0.1:{jport}/metrics",
               "executor": f"http://127.0.0.1:{eport}/metrics",
               "gateway": f"{c.gateway_url}/metrics"}
    finally:
        c.stop()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    deadline = time.monotonic() + 10
    while True:
        try:
            text = requests.get(url, timeout=10).text
            break
        except requests.ConnectionError:  # the executor's server starts with the node
            assert time.monotonic() < deadline
            time.sleep(0.1)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def submit(c: Cluster, command: str) -> str:
    body = {"compile": {"command": "true"}, "execute": {"command": command, "timeout": 20}}
    reply = requests.post(f"{c.gateway_url}/api/v2/tasks", json=body, timeout=30)
    assert reply.status_code == 201, reply.text
    return reply.json()["data"]["id"]  # type: ignore[no-any-return]


def wait(c: Cluster, task_id: str) -> dict[str, Any]:
    task = requests.get(f"{c.gateway_url}/api/v2/tasks/{task_id}?wait=30", timeout=40).json()
    assert task["data"]["done"], task
    return task["data"]  # type: ignore[no-any-return]


def poll(url: str, check: Any, seconds: float = 15) -> dict[Any, float]:
    deadline = time.monotonic() + seconds
    while not check(samples := scrape(url)):
        assert time.monotonic() < deadline, samples
        time.sleep(0.1)
    return samples


def test_metrics_move_with_real_tasks(env: dict[str, Any]) -> None:
    c = env["cluster"]
    before = {k: scrape(env[k]) for k in ("gateway", "judicator", "executor")}
    n = 12
    ids = [submit(c, "echo ok") for _ in range(n - 1)] + [submit(c, "exit 2")]
    for task_id in ids:
        wait(c, task_id)
    g = scrape(env["gateway"])
    post = dict(name="khala_http_requests_total", route="/api/v2/tasks", method="POST",
                status="201")
    # Two workers answered these: the multiprocess directory adds them up exactly.
    assert value(g, **post) - value(before["gateway"], **post) == n
    count = "khala_http_request_duration_seconds_count"
    assert value(g, count, route="/api/v2/tasks", method="POST") >= n

    j = poll(env["judicator"], lambda s: value(s, "khala_executor_slots_free") == 2)
    jb = before["judicator"]
    assert value(j, "khala_tasks_submitted_total") - value(jb, "khala_tasks_submitted_total") == n
    fin = "khala_tasks_finished_total"
    assert value(j, fin, status="success") - value(jb, fin, status="success") == n - 1
    assert value(j, fin, status="run_failed") - value(jb, fin, status="run_failed") == 1
    dispatched = "khala_task_dispatch_seconds_count"
    assert value(j, dispatched) - value(jb, dispatched) == n
    run = "khala_task_run_seconds_count"
    assert value(j, run, step="execute") - value(jb, run, step="execute") == n
    assert value(j, "khala_store_operation_duration_seconds_count", op="finish") >= n
    assert value(j, "khala_rpc_requests_total", method="submit", result="OK") >= n
    assert value(j, "khala_rpc_requests_total", method="report", result="OK") > 0
    assert value(j, "khala_executors_alive") == 1 and value(j, "khala_executor_slots") == 2
    assert value(j, "khala_judicator_leader") == 1
    assert value(j, "khala_leader_changes_total") == 1
    assert value(j, "khala_queue_length") == 0

    e = scrape(env["executor"])
    steps = "khala_steps_total"
    eb = before["executor"]
    assert value(e, steps, reason="ok") - value(eb, steps, reason="ok") == 2 * n - 1
    assert value(e, steps, reason="nonzero_exit") - value(eb, steps, reason="nonzero_exit") == 1
    assert value(e, "khala_sandbox_failures_total") == 0
    assert value(e, "khala_executor_slots") == 2


def test_queue_length_counts_waiting_tasks(env: dict[str, Any]) -> None:
    c = env["cluster"]
    busy = [submit(c, "sleep 3") for _ in range(2)]
    queued = [submit(c, "true") for _ in range(3)]  # one waits in the executor (ahead=1)
    poll(env["judicator"], lambda s: value(s, "khala_queue_length") == 2
         and value(s, "khala_executor_slots_free") == 0)
    poll(env["executor"], lambda s: value(s, "khala_executor_slots_busy") == 2)
    for task_id in busy + queued:
        wait(c, task_id)
    poll(env["judicator"], lambda s: value(s, "khala_queue_length") == 0)


def test_stats_show_a_memory_hungry_task_growing(env: dict[str, Any]) -> None:
    c = env["cluster"]
    if c.sandbox != "bwrap":
        pytest.skip("live usage is read from the task's cgroup (bwrap sandbox)")
    hungry = ("python3 -c 'import time\na=[]\nfor i in range(30):\n"
              "    a.append(b\"x\" * (4 << 20)); time.sleep(0.15)\ntime.sleep(2)'")
    url = f"{c.gateway_url}/api/v2/executors/exec-m"
    deadline = time.monotonic() + 20
    while requests.get(url, timeout=10).status_code != 200:  # its first report
        assert time.monotonic() < deadline, c.logs()
        time.sleep(0.1)
    task_id = submit(c, hungry)
    samples: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = requests.get(url, timeout=10)
        assert reply.status_code == 200, reply.text
        stats = reply.json()["data"]
        mine = [t for t in stats["tasks"] if t["id"] == task_id]
        if mine and mine[0]["status"] == "running" and mine[0]["memory"]:
            samples.append(mine[0]["memory"])
            assert mine[0]["pids"] >= 1 and mine[0]["cpu_time"] > 0, mine
        if samples and not mine:
            break
        time.sleep(0.2)
    assert len(samples) >= 4, samples
    assert max(samples) - samples[0] >= 40 << 20, samples  # 120 MiB allocated over ~4.5 s
    assert sum(b > a for a, b in zip(samples, samples[1:], strict=False)) >= 3, samples
    assert stats["slots"] == 2 and stats["version"] and len(stats["load"]) == 3
    assert 0 < stats["memory_available"] <= stats["memory_total"]
    listed = requests.get(f"{c.gateway_url}/api/v2/executors", timeout=10).json()["data"]
    assert [e["name"] for e in listed] == ["exec-m"]
    assert requests.get(f"{c.gateway_url}/api/v2/executors/nobody",
                        timeout=10).status_code == 404
    assert wait(c, task_id)["status"] == "success"
