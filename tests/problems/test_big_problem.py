"""A 500 MB, 1,000-case problem through a real cluster, on SQLite and on the MongoDB-wire server
(FerretDB): uploaded as one zip through API v2, fetched by the executor, judged, with every
Khala node's peak resident memory (the kernel's VmHWM of each of its processes) measured and
bounded far below the package's size — the package is streamed everywhere, never held whole.

Chunks are found by `_id`: FerretDB as scripts/install-deps.sh builds it looks `_id` up through
its index (tests/store/test_ferret_index.py), as MongoDB does; a stock FerretDB v1 scans the
collection for every lookup, ~0.5 s each in a 500 MB store."""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.problems import helpers as h
from tests.problems.packages import AB_TOML, SOLUTIONS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CASES = 1000
PAD = 500 * 1000  # bytes of each input past its first line: 1,000 inputs make 500 MB
MiB = 1024 * 1024
# Each node's peak resident memory: a Python node idles at 40–90 MiB here; holding the package,
# or even one 10 % of it, would pass this.
RSS_BOUND = 200 * MiB


def write_package(path: Path) -> int:
    """A+B whose inputs each carry a 500 kB line the solution never reads; every input differs
    (its first line), so content addressing cannot fold them. Stored, not deflated: random
    bytes do not shrink, and the zip is as large as the package. Returns the tests' bytes."""
    block = os.urandom(PAD // 2).hex().encode() + b"\n"
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("problem.toml", AB_TOML)
        for i in range(1, CASES + 1):
            data = f"{i} {i * 3}\n".encode() + block
            archive.writestr(f"tests/{i:04d}.in", data)
            archive.writestr(f"tests/{i:04d}.ans", f"{i * 4}\n")
            total += len(data) + len(f"{i * 4}\n")
    return total


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    path = tmp_path_factory.mktemp("big") / "big.zip"
    size = write_package(path)
    yield path, size
    path.unlink()


def processes(root: int) -> list[int]:
    """`root` and its descendants, except what runs inside sandboxes (bwrap's trees): those are
    the task's processes, not the node's."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "bwrap":
                continue
        except OSError:
            continue
        found.append(pid)
        todo += children.get(pid, [])
    return found


def peak_rss(root: int) -> int:
    """The largest VmHWM (peak resident set) among a node's processes, bytes."""
    peak = 0
    for pid in processes(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def upload_file(url: str, problem: str, path: Path) -> Any:
    with path.open("rb") as fh:
        answer = requests.post(f"{url}/api/v2/problems/{problem}/versions", data=fh,
                               headers={"Content-Type": "application/zip"}, timeout=900)
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("store", ["sqlite", "ferretdb"])
def test_a_500_mb_1000_case_problem_with_every_node_in_bounded_memory(
        store: str, package: tuple[Path, int], cluster_factory: Any,
        request: pytest.FixtureRequest) -> None:
    path, size = package
    assert size > 500 * 1000 * 1000 and path.stat().st_size > size
    c: Cluster = cluster_factory()
    url_of_store = request.getfixturevalue("mongo_url") if store == "ferretdb" else None
    c.start_judicator(store=url_of_store)
    c.start_executor(slots=2)
    c.start_gateway()
    h.wait_languages(c.gateway_url, "c")
    url = c.gateway_url

    started = time.monotonic()
    made = upload_file(url, "big", path)
    uploaded = time.monotonic()
    version = made["data"]["versions"][0]
    assert (version["cases"], version["bytes"]) == (CASES, size)

    language, name, source = SOLUTIONS["c"]
    body = {"compile": {"language": language, "files": [{"path": name, "content": source}]},
            "execute": {"problem": {"id": "big"}}}
    task = h.finished(url, h.submit(url, body), timeout=900)
    judged = time.monotonic()
    judgement = task["result"]["judgement"]
    assert h.verdict(task) == "accepted", judgement
    assert judgement["score"] == CASES and len(judgement["cases"]) == CASES

    peaks = {node.role: peak_rss(node.pid) for node in c.nodes}
    print(f"\n{store}: package {path.stat().st_size / MiB:.0f} MiB, uploaded in "
          f"{uploaded - started:.0f} s, judged in {judged - uploaded:.0f} s; peak RSS "
          + ", ".join(f"{role} {rss / MiB:.0f} MiB" for role, rss in peaks.items()))
    assert set(peaks) == {"judicator", "executor", "gateway"}
    assert all(0 < rss < RSS_BOUND for rss in peaks.values()), peaks
