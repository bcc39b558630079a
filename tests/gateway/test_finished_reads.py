"""GET /api/task of finished tasks answered from a gateway worker's memory (khala/gateway/
finished.py), through real nodes: the same answer as a gateway that keeps nothing, an unfinished
task never kept, a deleted one gone at once on the worker that deleted it and within
`finished_cache_seconds` elsewhere, and API keys checked on every read as before."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration
T = 30
LONG = 600  # seconds: longer than any test, so whatever is kept stays kept
SHORT = 0.5  # the bound checked for deletes made through another gateway
OWN, OTHER = 4201, 4202


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start_judicator()
        yield c
    finally:
        c.stop()


def url(c: Cluster, index: int) -> str:
    return f"http://127.0.0.1:{c.gateways[index].port}"


def read(base: str, task_id: str, key: str | None = None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.get(f"{base}/api/task", params={"id": task_id, **params}, headers=headers,
                        timeout=T)


def done_on(base: str, task_id: str, key: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = read(base, task_id, key).json()
        if answer["result"] == 0 and answer["task"]["done"]:
            return answer  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError(f"{task_id} not done: {answer}")


SHAPES: list[dict[str, Any]] = [{}, {"no_truncate": 1}, {"file": "execute_output"},
                                {"file": "compile_command"}]


def test_a_finished_task_reads_the_same_as_uncached_and_without_the_judicator(
        cluster: Cluster) -> None:
    c = cluster
    c.start_executor(slots=1)
    c.start_gateway(finished_cache_seconds=LONG)
    c.start_gateway(finished_cache_seconds=0)
    kept, plain = url(c, 0), url(c, 1)
    output = "".join(f"line {i} é\n" for i in range(300))  # past the 1,000-character cut
    task_id = c.submit(execute_command=f"printf '{output}'")
    done_on(plain, task_id)
    expected = [read(plain, task_id, **shape) for shape in SHAPES]
    for _ in range(3):  # the first read fetches, the next ones come from memory
        for shape, want in zip(SHAPES, expected, strict=True):
            got = read(kept, task_id, **shape)
            assert (got.status_code, got.content) == (want.status_code, want.content), shape
            assert got.headers["Content-Type"] == want.headers["Content-Type"], shape
    assert read(kept, task_id).json()["task"]["result"]["execute_output"].endswith("...")
    # The judicator gone: the kept worker still answers the finished task, from memory.
    for node in c.judicators:
        node.stop()
    assert read(kept, task_id).content == expected[0].content
    assert read(plain, task_id).json()["result"] != 0


def test_an_unfinished_task_is_never_kept(cluster: Cluster) -> None:
    c = cluster
    c.start_gateway(finished_cache_seconds=LONG)
    c.start_gateway(finished_cache_seconds=0)
    kept, plain = url(c, 0), url(c, 1)
    task_id = c.submit(execute_command="echo ran")
    for _ in range(5):  # no executor yet: pending
        task = read(kept, task_id).json()["task"]
        assert not task["done"] and task["result"] is None, task
    c.start_executor(slots=1)
    done_on(plain, task_id)
    task = read(kept, task_id).json()["task"]  # at once: the pending reads were not kept
    assert task["done"] and task["result"]["execute_output"] == "ran\n", task


def test_a_cancelled_run_is_kept_only_once_its_output_is_in(cluster: Cluster) -> None:
    """A cancelled task whose run was stopped gets that run's output afterwards (lifecycle
    KEEP): until then it is not final, so a reader sees the output when it comes."""
    c = cluster
    c.start_executor(slots=1)
    c.start_gateway(finished_cache_seconds=LONG)
    c.start_gateway(finished_cache_seconds=0)
    kept, plain = url(c, 0), url(c, 1)
    task_id = c.submit(execute_command="echo started; sleep 60")
    deadline = time.monotonic() + 60
    while read(plain, task_id).json()["task"]["status"] != 3:  # Running
        assert time.monotonic() < deadline, "the task never ran"
        time.sleep(0.02)
    cancelled = requests.delete(f"{plain}/api/task", params={"id": task_id}, timeout=T).json()
    assert cancelled["result"] == 0, cancelled
    first = read(kept, task_id).json()["task"]  # most likely before the run's output is in
    assert first["done"] and first["status"] == 7, first  # Cancelled
    deadline = time.monotonic() + 60
    while read(plain, task_id).json()["task"]["result"] is None:
        assert time.monotonic() < deadline, "the stopped run's output never came"
        time.sleep(0.02)
    result = read(kept, task_id).json()["task"]["result"]
    assert result is not None and result["execute_output"] == "started\n", result


def test_a_deleted_task_disappears(cluster: Cluster) -> None:
    c = cluster
    c.start_executor(slots=1)
    c.start_gateway(finished_cache_seconds=LONG)
    c.start_gateway(finished_cache_seconds=SHORT)
    c.start_gateway(finished_cache_seconds=0)
    kept, short, plain = url(c, 0), url(c, 1), url(c, 2)
    here, there = c.submit(), c.submit()
    for task_id in (here, there):
        done_on(plain, task_id)
        for base in (kept, short):
            assert read(base, task_id).json()["task"]["done"]
    # Deleted through the worker that keeps it: gone there at once.
    assert requests.delete(f"{kept}/api/v2/tasks/{here}", timeout=T).status_code == 204
    assert read(kept, here).json() == {"result": 2, "task": None}
    # Deleted through another gateway: gone from the short-lived one within its bound.
    assert requests.delete(f"{plain}/api/v2/tasks/{there}", timeout=T).status_code == 204
    time.sleep(SHORT)
    for _ in range(5):
        assert read(short, there).json() == {"result": 2, "task": None}
        assert read(plain, there).json() == {"result": 2, "task": None}


def make_key(path: Path, user: int, role: str) -> str:
    done = subprocess.run([sys.executable, "-m", "khala", "keys", "--file", str(path), "add",
                           "--user", str(user), "--role", role],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_key_reads_through_memory_only_what_it_may_see(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    c = cluster
    keys_file = tmp_path / "keys.toml"
    own, other = make_key(keys_file, OWN, "submit"), make_key(keys_file, OTHER, "submit")
    reader = make_key(keys_file, 2, "read")
    c.start_executor(slots=2)
    c.start_gateway(finished_cache_seconds=LONG, keys_file=keys_file,
                    seed_requires_keys="true")
    base = url(c, 0)
    ids = []
    for _ in range(2):
        added = requests.post(f"{base}/api/task", headers={"Authorization": f"Bearer {own}"},
                              data={**FORM, "user": OWN}, timeout=T).json()
        assert added["result"] == 0, added
        ids.append(added["id"])
    first, second = ids
    done_on(base, first, own)  # read by its owner: kept now
    done_on(base, second, reader)
    for _ in range(3):  # kept or not, another user's key never sees it
        for task_id in (first, second):
            assert read(base, task_id, other).json() == {"result": 2, "task": None}
            assert read(base, task_id, own).json()["task"]["user"] == OWN
            assert read(base, task_id, reader).json()["task"]["user"] == OWN
            refused = read(base, task_id)
            assert refused.status_code == 401 and refused.json()["result"] == 4


FORM = {"compile_command": "true", "compile_timeout": 10, "execute_input": "",
        "execute_command": "true", "execute_timeout": 10, "execute_standard": "",
        "compile_source_name": "", "compile_source_str": "", "execute_data_name": "",
        "execute_data_str": ""}
