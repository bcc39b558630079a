"""The cluster the seed clients run against: etcd (discovery and the executors' stream
endpoints, for output while a process runs), a judicator on SQLite, an executor on the bwrap
sandbox with warm boxes, and a gateway with API keys — separate processes, as `khala up` starts
them. The operator allows one host user and group (uid 1234, gid 1235) on every node."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from khala.gateway.keys import add_key
from tests.fixtures.cluster import Cluster

RUN_AS = {"run_users": "guest=1234:1235", "run_groups": "guests=1235"}
CALLS = {"shout": {"compile": {"command": "true"},
                   "execute": {"command": "tr a-z A-Z", "timeout": 60, "interactive": True}},
         "greet": {"compile": {"command": "true"},
                   "execute": {"command": "echo hello {{0}}", "timeout": 60}}}


@dataclass
class Seeds:
    cluster: Cluster
    url: str
    keys: dict[str, str]  # role → key

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory, etcd_server: Any) -> Iterator[Seeds]:
    tmp = tmp_path_factory.mktemp("seeds")
    keys_file = str(tmp / "keys.toml")
    keys = {role: add_key(keys_file, user, role)[0]
            for role, user in (("admin", 1), ("submit", 7), ("read", 2))}
    keys["other"] = add_key(keys_file, 8, "submit")[0]
    c = Cluster(tmp, etcd_url=etcd_server.url, prefix=f"/khala-seeds-{uuid.uuid4().hex[:10]}")
    try:
        c.start_judicator(**RUN_AS)
        c.start_executor(slots=3, **RUN_AS)
        c.start_gateway(keys_file=keys_file, pow_calls=json.dumps(CALLS), **RUN_AS)
        yield Seeds(c, c.gateway_url, keys)
    finally:
        c.stop()
