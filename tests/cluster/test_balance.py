"""Executors spread over the live judicators (rendezvous on their names) and move when one
goes and back when it returns. Real processes: two judicators on one MongoDB-wire store
(FerretDB), four executors, etcd for discovery."""

from __future__ import annotations

import re
import time
from typing import Any

from khala.rpc.rendezvous import rendezvous_order
from tests.cluster.test_failover import TTL, until
from tests.fixtures.cluster import Cluster, Node

JUDICATORS = ["judicator-a", "judicator-b"]
REPORTS_TO = re.compile(r"reports to judicator at (\S+)\n")


def executor_names(per_judicator: int) -> dict[str, str]:
    """Executor names whose first rendezvous choice is each judicator in turn, `per_judicator`
    each: executor name → its home judicator."""
    chosen: dict[str, str] = {}
    for i in range(1000):
        name = f"executor-{i}"
        home = rendezvous_order(name, JUDICATORS, str)[0]
        if list(chosen.values()).count(home) < per_judicator:
            chosen[name] = home
        if len(chosen) == per_judicator * len(JUDICATORS):
            return chosen
    raise AssertionError("rendezvous never chose both judicators")


def reporting_to(node: Node) -> str | None:
    """The judicator address an executor's last answered report came from (its log)."""
    found = REPORTS_TO.findall(node.log())
    return found[-1] if found else None


def placement(executors: dict[str, Node]) -> dict[str, str | None]:
    return {name: reporting_to(node) for name, node in executors.items()}


def test_executors_spread_fail_over_and_move_back(
    cluster_factory: Any, etcd_server: Any, mongo_url: str, etcd_prefix: str
) -> None:
    c: Cluster = cluster_factory(etcd_url=etcd_server.url, prefix=etcd_prefix)
    judicators = {
        name: c.start_judicator(store=mongo_url, name=name, ttl=TTL, expiry=5)
        for name in JUDICATORS
    }
    address = {name: f"127.0.0.1:{node.port}" for name, node in judicators.items()}
    homes = executor_names(per_judicator=2)
    executors = {name: c.start_executor(slots=1, name=name) for name in homes}
    expected = {name: address[home] for name, home in homes.items()}
    until(lambda: placement(executors) == expected, 20, "each executor at its judicator")
    print(f"\nspread: {placement(executors)}")

    judicators["judicator-a"].kill()
    killed_at = time.monotonic()
    moved = {name: address["judicator-b"] for name in homes}
    until(lambda: placement(executors) == moved, 15, "every executor on judicator-b")
    print(
        f"judicator-a SIGKILLed → its executors on judicator-b after "
        f"{time.monotonic() - killed_at:.2f}s"
    )

    back = c.start_judicator(store=mongo_url, name="judicator-a", ttl=TTL, expiry=5)
    returned_at = time.monotonic()
    address["judicator-a"] = f"127.0.0.1:{back.port}"
    expected = {name: address[home] for name, home in homes.items()}
    until(lambda: placement(executors) == expected, 15, "executors back at judicator-a")
    print(f"judicator-a back → its executors return after {time.monotonic() - returned_at:.2f}s")
    # Executors of judicator-b never moved.
    for name, home in homes.items():
        if home == "judicator-b":
            assert set(REPORTS_TO.findall(executors[name].log())) == {address["judicator-b"]}
