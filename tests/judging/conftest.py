"""A real cluster for the judging tests: one judicator (SQLite), one executor with every
language this host has and a compile cache in a known directory, one gateway; and a typed
client (khala.rpc.client) to drive it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from khala.discovery.static import StaticDiscovery
from khala.model import Case, Compare, Compile, Execute, Language, Task
from khala.rpc.client import JudicatorClient
from khala.zipcheck import make_zip
from tests.fixtures.cluster import Cluster


@dataclass
class Judging:
    cluster: Cluster
    client: JudicatorClient
    cache_dir: Path
    languages: dict[str, Language]

    def judge(self, task: Task, timeout: float = 120.0) -> Task:
        """Submit `task` and wait for it to be done (bounded)."""
        task_id = self.client.add(task)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.client.get(task_id)
            if got.done:
                return got
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} not done in {timeout}s\n{self.cluster.logs()}")


def wait_languages(client: JudicatorClient, names: set[str]) -> dict[str, Language]:
    """The languages listing once it has `names` (executors detect their languages after they
    start; bounded wait)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        listed = {x.name: x for x in client.languages()}
        if names <= set(listed):
            return listed
        time.sleep(0.1)
    raise AssertionError(f"no executor reported {names}: {client.languages()}")


def client_of(cluster: Cluster) -> JudicatorClient:
    return JudicatorClient(StaticDiscovery([cluster.judicator_address]), 30.0)


@pytest.fixture(scope="module")
def judging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Judging]:
    built = Cluster(tmp_path_factory.mktemp("judging"))
    cache_dir = Path(built.work_root) / "cache"
    try:
        built.start_judicator()
        built.start_executor(slots=2, cache_dir=str(cache_dir))
        built.start_gateway()
        client = client_of(built)
        # make test installs these three; others are reported where installed
        yield Judging(built, client, cache_dir, wait_languages(client, {"c", "cpp", "python3"}))
        client.close()
    finally:
        built.stop()


def task_of(language: str, name: str, source: str, cases: list[Case],
            compare: Compare | None = None, **execute: object) -> Task:
    return Task(user=1, compile=Compile(source=make_zip(name, source), timeout=60,
                                        language=language),
                execute=Execute(timeout=10, cases=cases, compare=compare,
                                **execute))  # type: ignore[arg-type]
