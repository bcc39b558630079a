"""Calls of the problem tests against a real gateway (API v2)."""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.problems.packages import SOLUTIONS, zipped


def upload(url: str, problem: str, files: dict[str, bytes], layout: str = "auto") -> Any:
    answer = requests.post(f"{url}/api/v2/problems/{problem}/versions?format={layout}",
                           data=zipped(files), headers={"Content-Type": "application/zip"},
                           timeout=300)
    assert answer.status_code == 201, answer.text
    return answer.json()


def submission(problem: str, solution: str = "right", version: int = 0,
               user: int = 0) -> dict[str, Any]:
    language, name, source = SOLUTIONS[solution]
    return {"user": user,
            "compile": {"language": language, "files": [{"path": name, "content": source}]},
            "execute": {"problem": {"id": problem, "version": version}}}


def submit(url: str, body: dict[str, Any]) -> str:
    answer = requests.post(f"{url}/api/v2/tasks", json=body, timeout=60)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["data"]["id"])


def finished(url: str, task_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    task: Any = None
    while time.monotonic() < deadline:
        answer = requests.get(f"{url}/api/v2/tasks/{task_id}?wait=20", timeout=60)
        if answer.status_code == 429:  # the gateway's waits are all taken: ask again later
            time.sleep(float(answer.headers.get("Retry-After", 1)))
            continue
        assert answer.status_code == 200, answer.text
        task = answer.json()["data"]
        if task["done"]:
            return task  # type: ignore[no-any-return]
    raise AssertionError(f"task {task_id} not done after {timeout} s: {task}")


def verdict(task: dict[str, Any]) -> str:
    return str(task["result"]["judgement"]["verdict"])


def wait_languages(url: str, *names: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have = {x["name"] for x in requests.get(f"{url}/api/v2/languages", timeout=10)
                .json()["data"]}
        if set(names) <= have:
            return
        time.sleep(0.2)
    raise AssertionError(f"languages {names} not offered after {timeout} s")


def metric(metrics_url: str, name: str) -> float:
    for line in requests.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name} at {metrics_url}")
