"""Cross-judicator wake-ups with real processes: two judicators sharing a MongoDB-wire store
(FerretDB) on real etcd, one executor whose reports go to judicator B (rendezvous hashing), and
a gateway that knows only judicator A.

Every timer that could also move the task is set far beyond the bound the test asserts: the
long-poll's store re-check (`poll_fallback`) is 60 s, the executor's long-poll hold
(`heartbeat`) 25 s. So a task added or cancelled through A reaches the executor on B within the
asserted 10 s only through B being woken through etcd."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from khala.rpc.rendezvous import rendezvous_order
from tests.fixtures.cluster import Cluster
from tests.fixtures.waiting import until

pytestmark = pytest.mark.integration

FALLBACK = 60.0  # the judicators' poll_fallback: far beyond BOUND
HOLD = 25.0  # the executor's heartbeat, i.e. its long-poll hold: beyond BOUND too
BOUND = 10.0  # what the wake must beat (it takes milliseconds on an idle host)


def executor_on(judicator: str, judicators: list[str]) -> str:
    """An executor name that rendezvous hashing sends to `judicator` first."""
    for n in range(1000):
        name = f"executor-{n}"
        if rendezvous_order(name, judicators, lambda j: j)[0] == judicator:
            return name
    raise AssertionError("no executor name ranks the judicator first")




@pytest.fixture
def split(
    cluster_factory: Any, etcd_server: Any, mongo_url: str, etcd_prefix: str
) -> Iterator[Cluster]:
    c: Cluster = cluster_factory(etcd_url=etcd_server.url, prefix=etcd_prefix)
    for name in ("judicator-a", "judicator-b"):
        c.start_judicator(store=mongo_url, name=name, expiry=HOLD * 3,
                          poll_fallback=FALLBACK, max_wait_ms=int(HOLD * 1000))
    c.start_executor(slots=2, name=executor_on("judicator-b", ["judicator-a", "judicator-b"]),
                     heartbeat=HOLD)
    # The gateway reaches judicator A only (static discovery): every add and cancel goes there.
    c.start_gateway(etcd="", judicators=f"127.0.0.1:{c.judicators[0].port}")
    until(lambda: requests.get(f"{c.gateway_url}/api/executors", timeout=5).json()["executors"],
          30, "the executor reporting")
    # Its first long-poll may have begun before judicator A registered in etcd and before B's
    # watch was up; from the second one on, everything is in place. A warm-up task proves it
    # (and is itself bounded only by the hold).
    c.wait_done(c.submit(), timeout=HOLD + 30)
    yield c


def test_task_added_elsewhere_is_dispatched_at_once(split: Cluster) -> None:
    took = []
    for _ in range(3):
        time.sleep(0.3)  # the executor is back in its long-poll on B
        started = time.monotonic()
        task_id = split.submit()
        task = split.wait_done(task_id, timeout=HOLD + 30)
        took.append(time.monotonic() - started)
        assert task["status"] == 5, task
    print(f"add via A → done via B: {[round(t * 1000, 1) for t in took]} ms")
    assert max(took) < BOUND, f"dispatched on the fallback, not woken: {took}\n{split.logs()}"


def _running(token: str) -> bool:
    """Whether a process whose command line holds `token` runs on this host."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        return True
            except OSError:
                continue
    return False


def test_cancel_through_another_judicator_stops_the_run_at_once(split: Cluster) -> None:
    token = f"{time.time_ns() % 10**9}.5"  # sleep's own argument: unique on this host
    task_id = split.submit(execute_command=f"sleep {token}", execute_timeout=30)
    until(lambda: _running(f"sleep\0{token}"), BOUND, "its process started")
    started = time.monotonic()
    answer = requests.delete(f"{split.gateway_url}/api/task", params={"id": task_id}, timeout=10)
    assert answer.json()["result"] == 0, answer.text
    until(lambda: not _running(f"sleep\0{token}"), BOUND,
          f"the cancelled run killed by the executor on B\n{split.logs()}")
    print(f"cancel via A → process gone via B: {(time.monotonic() - started) * 1000:.1f} ms")
