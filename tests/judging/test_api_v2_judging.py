"""Judging through API v2 (JSON over a real gateway and cluster): a task with a language,
weighted cases and a comparison; the judgement in the answer; GET /api/v2/languages; clear
errors for bad judging fields; the routes in /openapi.json."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.judging.conftest import Judging

pytestmark = pytest.mark.integration  # a real cluster (the `judging` fixture)

A_PLUS_B = "a, b = map(int, input().split())\nprint(a + b)\n"


def post(judging: Judging, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{judging.cluster.gateway_url}/api/v2/tasks", json=body, timeout=30)


def wait_task(judging: Judging, ref: str) -> dict[str, Any]:
    url = f"{judging.cluster.gateway_url}/api/v2/tasks/{ref}"
    for _ in range(20):  # each answer is held until done or 30 s pass
        data: dict[str, Any] = requests.get(url, params={"wait": 30}, timeout=60).json()["data"]
        if data["done"]:
            return data
    raise AssertionError(f"task {ref} not done")


def test_a_judged_task_in_json(judging: Judging) -> None:
    body = {
        "compile": {"language": "python3", "files": [{"path": "main.py", "content": A_PLUS_B}]},
        "execute": {
            "timeout": 5,
            "cases": [{"input": "1 2", "standard": "3", "weight": 2},
                      {"input": "2 2", "standard": "5", "weight": 3},
                      {"input": "0.5 1", "standard": "1.5", "timeout": 2}],
            "compare": {"mode": "float", "abs_tol": 1e-9},
        },
    }
    created = post(judging, body)
    assert created.status_code == 201, created.text
    task = created.json()["data"]
    assert task["compile"]["language"] == "python3" and task["execute"]["cases"] == 3
    assert task["execute"]["compare"]["mode"] == "float"
    done = wait_task(judging, task["id"])
    j = done["result"]["judgement"]
    assert [c["verdict"] for c in j["cases"]] == ["accepted", "wrong_answer", "runtime_error"]
    assert (j["verdict"], j["score"], j["max_score"]) == ("wrong_answer", 2, 6)
    assert j["cases"][2]["exit_code"] == 1 and "ValueError" in j["cases"][2]["error"]
    assert done["status"] == "success"  # the first case's run, as the seed view shows it
    assert done["result"]["execute"]["reason"] == "ok"
    out = requests.get(f"{judging.cluster.gateway_url}/api/v2/tasks/{task['id']}/outputs/"
                       "execute/stdout", timeout=30)
    assert out.content == b"3\n"


def test_languages_route(judging: Judging) -> None:
    answer = requests.get(f"{judging.cluster.gateway_url}/api/v2/languages", timeout=30)
    assert answer.status_code == 200
    listed = {x["name"]: x for x in answer.json()["data"]}
    assert {"c", "cpp", "python3"} <= set(listed)
    assert listed["c"]["executors"] == 1 and listed["c"]["version"]
    assert listed["python3"]["version"] == judging.languages["python3"].version


def test_bad_judging_fields_are_422(judging: Judging) -> None:
    files = [{"path": "main.py", "content": A_PLUS_B}]
    for compile_part, execute, needle in (
        ({"language": "cobol", "files": files}, {}, "language"),
        ({"language": "python3", "command": "python3 main.py", "files": files}, {},
         "leave them empty"),
        ({"language": "python3", "files": files}, {"compare": {"mode": "checker"}},
         "needs a checker"),
        ({"language": "python3", "files": files}, {"compare": {"mode": "fuzzy"}}, "mode"),
        ({"language": "python3", "files": files}, {"cases": [{"weight": -1}]}, "weight"),
    ):
        answer = post(judging, {"compile": compile_part, "execute": execute})
        assert answer.status_code == 422, (compile_part, execute, answer.text)
        assert needle in answer.text


def test_openapi_documents_judging(judging: Judging) -> None:
    spec = requests.get(f"{judging.cluster.gateway_url}/openapi.json", timeout=30).json()
    assert "get" in spec["paths"]["/api/v2/languages"]
    schemas = spec["components"]["schemas"]
    assert {"CaseIn", "CompareIn", "JudgementOut", "LanguageList"} <= set(schemas)
