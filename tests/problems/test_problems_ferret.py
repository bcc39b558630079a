"""Stored problems and files on the MongoDB-wire server (FerretDB, GridFS): two judicators on
one database serve the same problem — the gateway uploads through one, the executor fetches
through the other —; and a task's outputs larger than a document can hold are kept whole as
stored files (a result_limit of 48 MiB, 2 × 20 MiB of output, byte-exact through API v2),
where before every report of such a result failed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from khala.cli.up import free_port
from tests.fixtures.cluster import Cluster
from tests.problems import helpers as h
from tests.problems.packages import TOKEN_CHECKER, ab_package

OUTPUT = 20 * 1024 * 1024


@pytest.fixture
def ferret_pair(cluster_factory: Any, mongo_url: str) -> Iterator[dict[str, Any]]:
    c: Cluster = cluster_factory()
    first = c.start_judicator(store=mongo_url, name="judicator.a")
    second = c.start_judicator(store=mongo_url, name="judicator.b")
    eport = free_port()
    c.start_executor(slots=2, judicators=f"127.0.0.1:{second.port}",
                     metrics_listen=f"127.0.0.1:{eport}", result_limit=48 * 1024 * 1024,
                     output_limit=64 * 1024 * 1024)
    c.start_gateway(judicators=f"127.0.0.1:{first.port}")
    h.wait_languages(c.gateway_url, "python3", "cpp")
    yield {"cluster": c, "url": c.gateway_url, "metrics": f"http://127.0.0.1:{eport}/metrics"}


def test_two_judicators_on_ferretdb_serve_the_same_problem(ferret_pair: dict[str, Any]) -> None:
    url = ferret_pair["url"]
    files = ab_package(6, extra={"checker.cpp": TOKEN_CHECKER.encode()})
    made = h.upload(url, "shared", files)
    assert made["data"]["versions"][0]["checker"] == "cpp"
    ids = [h.submit(url, h.submission("shared")) for _ in range(3)]
    ids.append(h.submit(url, h.submission("shared", "wrong")))
    verdicts = [h.verdict(h.finished(url, i)) for i in ids]
    assert verdicts == ["accepted"] * 3 + ["wrong_answer"]
    # 6 inputs + 6 answers + the checker + the spec, fetched once through judicator.b
    assert h.metric(ferret_pair["metrics"], "khala_file_fetches_total") == 14


def test_outputs_beyond_a_document_are_kept_whole_as_files(ferret_pair: dict[str, Any]) -> None:
    url = ferret_pair["url"]
    command = (f"head -c {OUTPUT} /dev/zero | tr '\\0' x; "
               f"head -c {OUTPUT} /dev/zero | tr '\\0' y >&2")
    answer = requests.post(f"{url}/api/v2/tasks", json={
        "compile": {"command": "true"}, "execute": {"command": command, "timeout": 120,
                                                    "output_limit": 64 * 1024 * 1024}},
        timeout=60)
    assert answer.status_code == 201, answer.text
    task = h.finished(url, answer.json()["data"]["id"])
    assert task["status"] == "success", task["result"]
    assert task["result"]["execute"]["reason"] == "ok"
    for stream, byte in (("stdout", b"x"), ("stderr", b"y")):
        got = requests.get(f"{url}/api/v2/tasks/{task['id']}/outputs/execute/{stream}",
                           timeout=120)
        assert got.status_code == 200, (got.text, ferret_pair["cluster"].logs())
        assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(
            byte * OUTPUT).hexdigest(), len(got.content)
    compressed = requests.get(f"{url}/api/v2/tasks/{task['id']}/outputs/execute/stdout",
                              headers={"Accept-Encoding": "gzip"}, timeout=120)
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert compressed.content == b"x" * OUTPUT  # requests inflates it
    seed = requests.get(f"{url}/api/task", params={"id": task["id"], "no_truncate": 1},
                        timeout=60).json()["task"]
    assert seed["result"]["execute_output"] == "x" * 64 * 1024  # its first bytes
