"""Exactly-once cron ticks across failover: two judicators on FerretDB + etcd with the
test-only fast cron clock (one tick a second); the leader is SIGKILLed right at a tick."""

from __future__ import annotations

import collections
import time
from typing import Any

import requests

from tests.cluster.test_failover import TTL, ha, leader, until  # noqa: F401 - fixture ha
from tests.fixtures.cluster import Cluster
from tests.fixtures.joblog import skipped_ticks


def test_leader_sigkill_at_a_tick_fires_it_exactly_once(
    cluster_factory: Any, etcd_server: Any, mongo_url: str, etcd_prefix: str
) -> None:
    c: Cluster = cluster_factory(etcd_url=etcd_server.url, prefix=etcd_prefix)
    for name in ("judicator-a", "judicator-b"):
        c.start_judicator(store=mongo_url, name=name, ttl=TTL, expiry=3, reap_interval=0.3,
                          cron_unit=1, job_pass=0.1)
    c.start_executor(slots=4, name="executor-a")
    c.start_gateway()
    first = until(lambda: leader(etcd_server.url, c.prefix), 15, "a leader")
    body = {"name": "tick", "type": "cron", "cron": "* * * * *",
            "task": {"compile": {"command": "true"}, "execute": {"command": "echo t"}}}
    r = requests.post(f"{c.gateway_url}/api/v2/jobs", json=body, timeout=30)
    assert r.status_code == 201, r.text

    def ticks() -> list[int]:
        tasks = requests.get(f"{c.gateway_url}/api/v2/tasks", params={"limit": 1000},
                             timeout=30).json()["data"]
        return [int(t["id"].split(".")[4][1:], 36) for t in tasks if t["id"].startswith("tick.")]

    until(lambda: len(ticks()) >= 3, 20, "ticks firing")
    while time.time() % 1 > 0.02:  # right at the start of a tick
        time.sleep(0.002)
    victim = next(j for j in c.judicators if f"--name {first}" in " ".join(j.argv))
    killed_tick = int(time.time())
    victim.kill()
    until(lambda: (lambda n: n and n != first)(leader(etcd_server.url, c.prefix)), TTL + 5,
          "a new leader")
    resumed = until(lambda: [t for t in ticks() if t > killed_tick + 1], 20, "ticks again")
    time.sleep(2)
    fired = ticks()
    counts = collections.Counter(fired)
    print(f"\nkilled at tick {killed_tick}; fired ticks {sorted(counts)}; resumed {resumed[:1]}")
    assert all(n == 1 for n in counts.values()), counts  # never twice
    assert counts[killed_tick] == 1  # the tick at the kill: by the dead leader or, late, the next
    # one per second until the kill, but for ticks a late pass skipped (a loaded host), which
    # the leader of the moment logged
    skipped = set().union(*(skipped_ticks(j.log(), "tick") for j in c.judicators))
    assert not skipped & set(counts), (sorted(counts), sorted(skipped))
    before = sorted(t for t in {*counts, *skipped} if t < killed_tick)
    assert before == list(range(min(before), killed_tick)), (sorted(counts), sorted(skipped))
    # a tick the dead leader recorded has its task: the state's tick has one
    state = requests.get(f"{c.gateway_url}/api/v2/jobs/tick", timeout=30).json()["data"]
    assert state["status"] in ("running", "scheduled")
    after = sorted(t for t in {*counts, *skipped} if t > killed_tick + TTL and t <= max(counts))
    assert after == list(range(after[0], after[0] + len(after)))  # every second again
