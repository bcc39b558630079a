"""Links that fail between nodes on separate hosts (tests/fixtures/split_cluster.py): each node
in a network namespace of its own on one bridge, links cut, filtered or made lossy by the test.

Bounds are the documented ones (docs/operations.md, "Health and failure"): an executor's tasks
go back to the queue within `--expiry` of its silence, and a leader that cannot keep its etcd
lease stops acting as the leader within two thirds of `--ttl`, before the lease expires and
another takes over.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.cluster.test_failover import leader
from tests.fixtures.netns import Network
from tests.fixtures.split_cluster import EXPIRY, TTL, SplitCluster
from tests.fixtures.waiting import until

pytestmark = pytest.mark.integration  # real nodes in network namespaces
DELAY, LOSS = 0.05, 0.05
LOSSY_TASKS = 20


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitCluster]:
    net = Network()
    try:
        cluster = SplitCluster(tmp_path_factory.mktemp("split"), net)
        with net.inside(cluster.client):
            try:
                cluster.start()
                yield cluster
            finally:
                cluster.stop()
    finally:
        net.close()


def other(name: str) -> str:
    return {"executor-a": "executor-b", "executor-b": "executor-a",
            "judicator-a": "judicator-b", "judicator-b": "judicator-a"}[name]


def node_of(c: SplitCluster, name: str) -> Any:
    nodes = c.executors if name.startswith("executor") else c.judicators
    return nodes[0 if name.endswith("-a") else 1]


def test_a_cut_off_executor_lets_go_and_its_task_finishes_once_elsewhere(
        split: SplitCluster) -> None:
    c = split
    task = c.submit(execute_command="sleep 8; echo slept", execute_timeout=60)
    holder = until(lambda: c.holder(task), 30, "the task is running")
    cut = node_of(c, holder)
    c.net.cut(c.hosts[holder])
    try:
        # Requeued once its executor is silent for the expiry; then 8 s on the other one.
        done = c.wait_done(task, timeout=EXPIRY + 30)
        assert (done["executor"], done["status"]) == (other(holder), 5), done
        assert done["result"]["execute_output"] == "slept\n", done
        # The cut executor let go within its expiry: long before the other one finished.
        assert f"stopped ['{task}']" in cut.log(), cut.log()[-3000:]
    finally:
        c.net.mend(c.hosts[holder])
    until(lambda: holder in {e["hostname"] for e in c.listing("executors")}, 30,
          f"{holder} reports again")
    again = c.get(task, no_truncate=1)["task"]
    assert (again["executor"], again["status"], again["result"]["execute_output"]) == (
        other(holder), 5, "slept\n"), again  # no stale result replaced it
    assert c.finishes(task) == {holder: 0, other(holder): 1}


def times_of(log: str, message: str) -> list[dt.datetime]:
    """When a node's log says `message` (its lines start with the time, to the millisecond)."""
    found = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*" + re.escape(message) + "$",
                       log, re.MULTILINE)
    return [dt.datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f") for t in found]


def test_a_leader_cut_off_from_etcd_stops_leading_before_another_takes_over(
        split: SplitCluster) -> None:
    c = split
    old = until(lambda: leader(c.etcd_url, c.prefix), 30, "a leader")
    c.net.block(c.hosts[old], c.etcd_host)  # the store and every client still reach it
    try:
        new = until(lambda: (name := leader(c.etcd_url, c.prefix)) not in (None, old) and name,
                    TTL + 10, "another judicator takes over")
        assert new == other(old)
        until(lambda: times_of(node_of(c, new).log(), "reaper: acting as the leader"), 10,
              "the new leader's reaper runs")
    finally:
        c.net.clear(c.hosts[old])
    stopped = times_of(node_of(c, old).log(), "reaper: no longer the leader")
    started = times_of(node_of(c, new).log(), "reaper: acting as the leader")
    assert stopped and started, (node_of(c, old).log()[-3000:], node_of(c, new).log()[-3000:])
    assert stopped[-1] < started[-1], (stopped, started)  # never two reapers at once
    # Back on etcd, the old leader follows: it does not lead again beside the new one.
    until(lambda: old in {j["name"].rsplit("/", 1)[-1] for j in c.listing("judicators")}, TTL + 10,
          f"{old} registered again")
    assert leader(c.etcd_url, c.prefix) == new
    assert len(times_of(node_of(c, old).log(), "reaper: acting as the leader")) == len(stopped)


def test_a_gateway_cut_off_from_one_judicator_uses_the_other(split: SplitCluster) -> None:
    c = split
    lost = c.hosts["judicator-a"]
    c.net.block(c.gateway_host, lost)
    try:
        tasks = [c.submit(execute_command=f"echo {i}") for i in range(6)]
        for i, task in enumerate(tasks):
            done = c.wait_done(task, timeout=30)
            assert (done["status"], done["result"]["execute_output"]) == (5, f"{i}\n"), done
        answer = requests.get(f"{c.gateway_url}/api/judicators", timeout=10).json()
        assert answer["result"] == 0
    finally:
        c.net.clear(c.gateway_host)


def test_a_slow_lossy_link_loses_no_task_and_runs_none_twice(split: SplitCluster) -> None:
    """50 ms each way and 5 % of the frames lost each way, between executor-a and the rest."""
    c = split
    lossy = c.hosts["executor-a"]
    c.net.slow(lossy, DELAY, LOSS)
    try:
        tasks = [c.submit(execute_command=f"sleep 0.2; echo {i}") for i in range(LOSSY_TASKS)]
        ran_on = set()
        for i, task in enumerate(tasks):
            done = c.wait_done(task, timeout=120)
            assert (done["status"], done["result"]["execute_output"]) == (5, f"{i}\n"), done
            ran_on.add(done["executor"])
    finally:
        c.net.slow(lossy, 0, 0)
    assert "executor-a" in ran_on, ran_on  # tasks and results went over the slow link
    counts = {task: sum(c.finishes(task).values()) for task in tasks}
    assert counts == dict.fromkeys(tasks, 1), counts  # each ran to its end exactly once
