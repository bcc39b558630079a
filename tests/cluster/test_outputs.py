"""Outputs through real processes (judicator, executor in its sandbox, gateway): bytes come
back exactly as the step wrote them, a step ended by its limits carries the original Khala's
error text, and an output beyond what a result keeps is never cut silently."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration  # starts its own cluster

RESULT_LIMIT = 4096


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One judicator, one executor keeping at most RESULT_LIMIT bytes per stream, a gateway."""
    built = Cluster(tmp_path_factory.mktemp("outputs"))
    try:
        built.start_judicator()
        built.start_executor(slots=2, result_limit=RESULT_LIMIT)
        built.start_gateway()
        yield built
    finally:
        built.stop()


def download(c: Cluster, task_id: str, name: str) -> bytes:
    response = requests.get(
        f"{c.gateway_url}/api/task", params={"id": task_id, "file": name}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.content


def test_invalid_utf8_is_byte_exact_in_downloads(small: Cluster) -> None:
    task_id = small.submit(execute_command=r"printf 'a\377\376\000b'; printf '\300x' >&2")
    task: dict[str, Any] = small.wait_done(task_id)
    assert task["status"] == 5, task
    assert download(small, task_id, "execute_output") == b"a\xff\xfe\x00b"
    assert download(small, task_id, "execute_error") == b"\xc0x"
    assert task["result"]["execute_output"] == "a\ufffd\ufffd\x00b"  # JSON shows text


def test_output_beyond_the_result_limit_fails_visibly(small: Cluster) -> None:
    task = small.wait_done(small.submit(execute_command=f"head -c {RESULT_LIMIT * 4} /dev/zero"))
    assert task["status"] == 4, task
    assert task["result"]["execute"]["reason"] == "output_limit"
    assert task["result"]["execute_error"] == "Execution output limitation exceeded."
    assert len(task["result"]["execute_output"]) <= RESULT_LIMIT
    compiled = small.wait_done(small.submit(compile_command="head -c 100000 /dev/zero >&2"))
    assert compiled["status"] == 2, compiled
    assert compiled["result"]["compile"]["reason"] == "output_limit"
    assert compiled["result"]["compile_error"] == "Compile output limitation exceeded."


def test_timeouts_carry_the_original_messages(small: Cluster) -> None:
    run = small.submit(execute_command="echo partial; echo noise >&2; sleep 30", execute_timeout=1)
    build = small.submit(compile_command="sleep 30", compile_timeout=1)
    task = small.wait_done(run)
    assert task["status"] == 4 and task["result"]["execute"]["reason"] == "wall_limit", task
    assert task["result"]["execute_error"] == "Execution time out."
    assert task["result"]["execute_output"] == "partial\n"
    task = small.wait_done(build)
    assert task["status"] == 2 and task["result"]["compile"]["reason"] == "wall_limit", task
    assert task["result"]["compile_error"] == "Compile time out."
