"""Small helpers of the browser tests: API calls with requests, zips, unique users."""

from __future__ import annotations

import io
import itertools
import time
import zipfile
from typing import Any

import requests

from tests.problems.packages import zipped

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


def submit_v2(base: str, body: dict[str, Any], ref: str | None = None) -> str:
    """POST an API v2 task (under `ref` when given); its id."""
    path = f"/api/v2/tasks/{ref}" if ref else "/api/v2/tasks"
    reply = requests.post(base + path, json=body, timeout=TIMEOUT)
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()["data"]["id"])


def wait_v2(base: str, ref: str, timeout: float = 120) -> dict[str, Any]:
    """The API v2 task once done (long-polls with ?wait=)."""
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = requests.get(f"{base}/api/v2/tasks/{ref}", params={"wait": 10},
                            timeout=TIMEOUT).json()["data"]
        if task["done"]:
            return task
    raise AssertionError(f"task {ref} not done: {task}")


A_PLUS_B = ('#include <stdio.h>\nint main(void) {\n  int a, b;\n  scanf("%d %d", &a, &b);\n'
            '  printf("%d\\n", a + b);\n  return 0;\n}\n')
A_TIMES_B = A_PLUS_B.replace("a + b", "a * b")


def judged(source: str, cases: list[tuple[str, str]], user: int) -> dict[str, Any]:
    """An API v2 body judging a C `source` on `cases` (input, expected)."""
    return {"user": user,
            "compile": {"language": "c", "files": [{"path": "main.c", "content": source}]},
            "execute": {"cpu_limit": 2, "timeout": 5,
                        "cases": [{"input": i, "standard": s} for i, s in cases]}}


# A problem package (Khala's layout) with two groups, for the problems pages.
GROUPS_TOML = """
title = "Sum in groups"
[limits]
time = 1.5
memory = "64M"
output = "1M"
[limits.time_factors]
python3 = 2.0
[compare]
mode = "tokens"
[[groups]]
name = "small"
points = 40
[[groups]]
name = "big"
points = 60
policy = "min"
deps = ["small"]
"""


def groups_package(big_answer: str = "3000") -> bytes:
    """Two cases in `small`, two in `big` (which depends on small); `big_answer` is what the
    second big case expects (1000 + 2000 is right)."""
    return zipped({
        "problem.toml": GROUPS_TOML.encode(),
        "tests/small/1.in": b"1 2\n", "tests/small/1.ans": b"3\n",
        "tests/small/2.in": b"2 2\n", "tests/small/2.ans": b"4\n",
        "tests/big/1.in": b"100 200\n", "tests/big/1.ans": b"300\n",
        "tests/big/2.in": b"1000 2000\n", "tests/big/2.ans": f"{big_answer}\n".encode(),
    })


def zip_file(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/zip", "buffer": data}
