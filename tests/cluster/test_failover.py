"""Failover with real processes on loopback: two judicators sharing a MongoDB-wire store
(FerretDB), two executors, one gateway, etcd for discovery and leadership.

Each test prints how long recovery took."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.fixtures.waiting import until

TTL = 3
# The longest the cluster may go without finishing a task after the leader dies, beyond the
# TTL: an executor's report fails over to the other judicator (back-off), a claim is cleared.
PROGRESS_SLACK = 5
# A gone judicator's claim is cleared within TTL + this: its store's heartbeat goes stale in
# WRITER_STALE_SECONDS (khala/store/mongo/ferret_claims.py, no more than the TTL here), then
# the back-off of assignment (at most 1 s) finds it orphaned.
CLEAR_SLACK = 3
WARM_UP_TASKS = 8  # two rounds on the 4 slots; the 40 tasks are ten
CLAIM_STALL = 60  # what an orphaned claim cost before claims were tied to liveness


def leader(etcd_url: str, prefix: str) -> str | None:
    key = base64.b64encode(f"{prefix}/leader".encode()).decode()
    request = urllib.request.Request(
        f"{etcd_url}/v3/kv/range", data=json.dumps({"key": key}).encode()
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            kvs = json.loads(response.read()).get("kvs", [])
    except OSError:
        return None
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None




@pytest.fixture
def ha(
    cluster_factory: Any, etcd_server: Any, mongo_url: str, etcd_prefix: str
) -> Iterator[Cluster]:
    c: Cluster = cluster_factory(etcd_url=etcd_server.url, prefix=etcd_prefix)
    for name in ("judicator-a", "judicator-b"):
        c.start_judicator(store=mongo_url, name=name, ttl=TTL, expiry=3, reap_interval=0.3)
    c.start_executor(slots=2, name="executor-a")
    c.start_executor(slots=2, name="executor-b")
    c.start_gateway()
    until(
        lambda: (
            len(requests.get(f"{c.gateway_url}/api/judicators", timeout=5).json()["judicators"])
            == 2
        ),
        15,
        "both judicators registered",
    )
    until(
        lambda: (
            len(requests.get(f"{c.gateway_url}/api/executors", timeout=5).json()["executors"]) == 2
        ),
        15,
        "both executors reporting",
    )
    yield c


def finished_counts(c: Cluster) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in c.executors:
        for task_id in re.findall(r"task ([0-9a-f]{24}) finished with status \d+\n", node.log()):
            counts[task_id] = counts.get(task_id, 0) + 1
    return counts


def submit_form(i: int) -> dict[str, Any]:
    return {
        "user": 5,
        "compile_source_name": "",
        "compile_source_str": "",
        "compile_command": "true",
        "compile_timeout": 10,
        "execute_input": str(i),
        "execute_data_name": "",
        "execute_data_str": "",
        "execute_command": "cat; sleep 0.2",
        "execute_timeout": 10,
        "execute_standard": "",
    }


def writer_of(mongo_url: str, pid: int) -> str:
    """The store writer (khala/store/mongo/ferret_claims.py) of the judicator process `pid`."""
    with pymongo.MongoClient(mongo_url, tz_aware=False) as client:
        doc = client.get_default_database().writers.find_one({"pid": pid})
    assert doc is not None, f"no store heartbeat of process {pid}"
    return str(doc["_id"])


def orphan_claims(mongo_url: str, writers: list[str], count: int) -> list[str]:
    """Lock the `count` newest queued tasks as judicators that die mid-claim leave them
    (server-clock time, their store's writer id, a token no one has): the ids claimed."""
    with pymongo.MongoClient(mongo_url, tz_aware=False) as client:
        db = client.get_default_database()
        now = client.admin.command("hello")["localTime"].replace(tzinfo=dt.UTC).timestamp()
        queued = db.tasks.find({"done": False, "executor": None}, {"attempts": 1})
        newest = list(queued.sort([("add_time", -1), ("_id", -1)]).limit(count))
        for doc, writer in zip(newest, writers * count, strict=False):
            db.claims.insert_one({"_id": str(doc["_id"]), "writer": writer, "at": now,
                                  "token": "dead"})  # the task's lock
        return [str(doc["_id"]) for doc in newest]


def test_leader_sigkill_under_load(ha: Cluster, etcd_server: Any, mongo_url: str) -> None:
    """After the leader dies the cluster never goes longer than a bound tied to the TTL
    without finishing a task, and every accepted task is done, even tasks the dead judicator
    (or one never registered) left claimed: no 60 s claim stall. The bound is on progress,
    not on the 40 tasks' total (that depends on the machine's load)."""
    first = until(lambda: leader(etcd_server.url, ha.prefix), 10, "a leader")
    warm_up = [
        requests.post(f"{ha.gateway_url}/api/task", timeout=30, data=submit_form(i)).json()["id"]
        for i in range(WARM_UP_TASKS)
    ]
    for task_id in warm_up:
        ha.wait_done(task_id, timeout=60)
    victim = next(j for j in ha.judicators if f"--name {first}" in " ".join(j.argv))
    gone = [writer_of(mongo_url, victim.pid), "writer-that-never-beat"]
    accepted: list[str] = []
    killed_at = 0.0
    for i in range(40):  # bounded load: 40 submissions, the leader dies after the 15th
        if i == 15:
            victim.kill()
            killed_at, killed_wall = time.monotonic(), time.time()
            claimed = orphan_claims(mongo_url, gone, 3)
        answer = requests.post(f"{ha.gateway_url}/api/task", timeout=30, data=submit_form(i))
        if answer.json()["result"] == 0:
            accepted.append(answer.json()["id"])
    new = until(
        lambda: (lambda n: n if n and n != first else None)(leader(etcd_server.url, ha.prefix)),
        TTL + 2,
        "a new leader",
    )
    took = time.monotonic() - killed_at
    assert len(accepted) == 40, f"only {len(accepted)} of 40 accepted while failing over"
    assert len(claimed) == 3, claimed
    left = list(accepted)

    def none_left() -> bool:
        while left and ha.get(left[0])["task"]["done"]:
            left.pop(0)
        return not left

    until(none_left, CLAIM_STALL, "all 40 accepted tasks done")
    total = time.monotonic() - killed_at
    done_at = {}
    for task_id in accepted:
        task = ha.get(task_id)["task"]
        assert task["status"] == 5, task
        done_at[task_id] = dt.datetime.fromisoformat(task["report_time"]).replace(tzinfo=dt.UTC)
    finishes = [killed_wall] + sorted(t for t in (v.timestamp() for v in done_at.values())
                                      if t > killed_wall)
    pause = max(b - a for a, b in zip(finishes, finishes[1:], strict=False))
    print(
        f"\nleader {first} SIGKILLed → {new} leads after {took:.2f}s; all 40 tasks (3 with "
        f"orphaned claims) done {total:.2f}s after the kill; the longest time without a task "
        f"finishing {pause:.2f}s (TTL {TTL}s)"
    )
    assert pause <= TTL + PROGRESS_SLACK, f"no task finished for {pause:.1f}s after the kill"
    # Load-independent: a claimed task is no straggler. It is done before the last of the other
    # tasks (all queued behind it), or within TTL + CLEAR_SLACK of the kill if the queue ran dry
    # sooner. With a claim stall it would be done last, ~60 s after the kill.
    latest_other = max(v.timestamp() for k, v in done_at.items() if k not in claimed)
    for task_id in claimed:
        allowed = max(latest_other, killed_wall + TTL + CLEAR_SLACK)
        assert done_at[task_id].timestamp() <= allowed, (task_id, done_at[task_id], allowed)
    survivor = next(j for j in ha.judicators if j is not victim).log()
    for writer in gone:
        assert f"of writer {writer} (gone)" in survivor, f"claims of {writer} never cleared"
    counts = finished_counts(ha)
    odd = {t: counts.get(t) for t in accepted if counts.get(t) != 1}
    assert not odd, f"tasks not run exactly once: {odd}\n{ha.logs()}"


def test_executor_sigkill_mid_task(ha: Cluster) -> None:
    busy = ha.submit(execute_command="sleep 3")  # keeps one slot of someone busy
    task_id = ha.submit(execute_command="sleep 1; echo ok")
    holder = until(
        lambda: (lambda t: t["executor"] if t["status"] == 3 else None)(ha.get(task_id)["task"]),
        15,
        "task running",
    )
    victim = next(e for e in ha.executors if f"--name {holder}" in " ".join(e.argv))
    killed_at = time.monotonic()
    victim.kill()
    until(
        lambda: ha.get(task_id)["task"]["status"] == 6 or ha.get(task_id)["task"]["done"],
        15,
        "task back to Retrying",
    )
    requeued = time.monotonic() - killed_at
    task = ha.wait_done(task_id, timeout=30)
    done = time.monotonic() - killed_at
    print(
        f"\nexecutor {holder} SIGKILLed → Retrying after {requeued:.2f}s → "
        f"Success on {task['executor']} after {done:.2f}s"
    )
    assert task["status"] == 5 and task["executor"] != holder
    assert task["result"]["execute_output"] == "ok\n"
    ha.wait_done(busy, timeout=30)


def test_etcd_restart(ha: Cluster, etcd_server: Any) -> None:
    etcd_server.stop()
    time.sleep(1)
    stopped_at = time.monotonic()
    etcd_server.start()
    until(
        lambda: (
            len(requests.get(f"{ha.gateway_url}/api/judicators", timeout=5).json()["judicators"])
            == 2
        ),
        20,
        "judicators registered again",
    )
    until(lambda: leader(etcd_server.url, ha.prefix), 20, "a leader again")
    took = time.monotonic() - stopped_at
    task = ha.wait_done(ha.submit(execute_command="echo after"), timeout=30)
    print(f"\netcd restarted → both judicators registered and a leader after {took:.2f}s")
    assert task["status"] == 5 and task["result"]["execute_output"] == "after\n"


def test_judicator_sigkill_gateway_keeps_answering(ha: Cluster) -> None:
    ha.judicators[0].kill()
    killed_at = time.monotonic()
    task_id = ha.submit(execute_command="echo still")
    answered = time.monotonic() - killed_at
    task = ha.wait_done(task_id, timeout=30)
    assert task["status"] == 5 and task["result"]["execute_output"] == "still\n"
    gone = until(
        lambda: (
            len(requests.get(f"{ha.gateway_url}/api/judicators", timeout=5).json()["judicators"])
            == 1
        ),
        TTL + 2,
        "dead judicator dropped",
    )
    dropped = time.monotonic() - killed_at
    print(
        f"\njudicator SIGKILLed → gateway answered after {answered:.2f}s; "
        f"dropped from /api/judicators after {dropped:.2f}s"
    )
    assert gone
