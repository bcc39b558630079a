"""Small helpers of the browser tests: API calls with requests, zips, unique users."""

from __future__ import annotations

import io
import itertools
import time
import zipfile
from typing import Any

import requests

TIMEOUT = 30
# Each test owns its users, so searches see only its own tasks.
USERS = itertools.count(2_000_000 + int(time.time() * 1000) % 1_000_000 * 100)


def new_user() -> int:
    return next(USERS)


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def search(base: str, **params: Any) -> dict[str, Any]:
    reply = requests.get(f"{base}/api/task/list", params=params, timeout=TIMEOUT)
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


def wait_status(
    cluster: Any, task_id: str, statuses: set[int], timeout: float = 60
) -> dict[str, Any]:
    """Polls the API until the task's status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = cluster.get(task_id)["task"]
        if task["status"] in statuses:
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {statuses}: {task}\n{cluster.logs()}")


def node_name(node: Any) -> str:
    return str(node.argv[node.argv.index("--name") + 1])
