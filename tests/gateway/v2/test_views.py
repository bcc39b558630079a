"""API v2's views without a cluster: the gateway app over the in-package stub judicator
(khala/rpc/stub.py), through Flask's test client. Routes, validation, statuses, the error
envelope, paging, outputs, control, executors and jobs; the same routes through real processes
are in test_api.py."""

from __future__ import annotations

import base64
import gzip
from dataclasses import replace
from pathlib import Path
from typing import Any

import brotli
import pytest
from flask.testing import FlaskClient

from khala.config import GatewaySettings
from khala.discovery.static import StaticDiscovery
from khala.errors import RemoteError, Unavailable
from khala.gateway.app import create_app
from khala.gateway.keys import add_key
from khala.model import Result, Status, StepReport
from khala.rpc.stub import StubJudicator

SETTINGS = GatewaySettings(max_task_size=100_000, max_batch_size=5, max_cases=3)


@pytest.fixture
def judicator() -> StubJudicator:
    return StubJudicator(SETTINGS)


@pytest.fixture
def http(judicator: StubJudicator) -> FlaskClient:
    return create_app(SETTINGS, client=judicator, discovery=StaticDiscovery([])).test_client()


def body(**changes: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"user": 7, "compile": {"command": "true"},
                            "execute": {"command": "cat", "input": "hi"}}
    task.update(changes)
    return task


def errors(reply: Any, status: int) -> list[dict[str, str]]:
    assert reply.status_code == status, (reply.status_code, reply.get_data(as_text=True))
    items = reply.get_json()["errors"]
    assert items and all(i["status"] == str(status) and i["title"] and i["detail"]
                         for i in items), items
    return items  # type: ignore[no-any-return]


def create(http: FlaskClient, ref: str | None = None, **changes: Any) -> dict[str, Any]:
    reply = http.post("/api/v2/tasks" + (f"/{ref}" if ref else ""), json=body(**changes))
    assert reply.status_code == 201, reply.get_data(as_text=True)
    return reply.get_json()["data"]  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- submission


def test_create_answers_the_task_with_its_location(http: FlaskClient,
                                                   judicator: StubJudicator) -> None:
    reply = http.post("/api/v2/tasks", json=body(priority=5))
    assert reply.status_code == 201
    task = reply.get_json()["data"]
    assert reply.headers["Location"] == f"/api/v2/tasks/{task['id']}"
    assert task["status"] == "pending" and task["user"] == 7 and not task["done"]
    stored = judicator.tasks[task["seed_id"]]
    assert (stored.priority, stored.execute.input, stored.execute.command) == (5, "hi", "cat")


def test_invalid_bodies_answer_400_or_422_naming_every_problem(http: FlaskClient,
                                                            judicator: StubJudicator) -> None:
    errors(http.post("/api/v2/tasks", data="{not json", content_type="application/json"), 400)
    errors(http.post("/api/v2/tasks"), 400)
    detail = errors(http.post("/api/v2/tasks", json={"user": -1, "compile": {}, "extra": 1}),
                    422)[0]["detail"]
    assert all(f"{where}:" in detail for where in ("user", "execute", "extra")), detail
    errors(http.post("/api/v2/tasks", json=body(priority=1001)), 422)
    # the limits policy, checked where a judicator checks it: more cases than max_cases
    cases = [{"input": str(i), "standard": str(i)} for i in range(4)]
    too_many = errors(http.post("/api/v2/tasks", json=body(
        execute={"command": "cat", "cases": cases})), 422)[0]["detail"]
    assert "limit of 3" in too_many
    assert judicator.tasks == {}


def test_client_ids_are_idempotent_and_conflict_on_another_body(http: FlaskClient) -> None:
    first = create(http, "job-1.a")
    again = http.post("/api/v2/tasks/job-1.a", json=body())
    assert again.status_code == 200 and again.get_json()["data"]["seed_id"] == first["seed_id"]
    assert errors(http.post("/api/v2/tasks/job-1.a", json=body(user=8)), 409)
    errors(http.post("/api/v2/tasks/bad id!", json=body()), 422)


def test_batch_gives_each_item_its_outcome(http: FlaskClient) -> None:
    create(http, "taken")
    items = [body(), body(id="fresh"), body(user=-1), body(id="taken", user=9),
             {"user": "x"}]
    reply = http.post("/api/v2/batches", json={"tasks": items})
    assert reply.status_code == 200
    got = reply.get_json()["data"]
    assert [o["status"] for o in got] == [201, 201, 422, 409, 422]
    assert got[1]["id"] == "fresh" and got[3]["id"] == "taken"
    assert got[0]["data"]["status"] == "pending" and got[2]["errors"][0]["detail"]
    errors(http.post("/api/v2/batches", json={"tasks": [body()] * 6}), 422)  # max_batch_size


# ----------------------------------------------------------------------------- reading


def test_get_and_unknown_tasks(http: FlaskClient, judicator: StubJudicator) -> None:
    task = create(http)
    assert http.get(f"/api/v2/tasks/{task['id']}").get_json()["data"] == task
    assert "nope" in errors(http.get("/api/v2/tasks/nope"), 404)[0]["detail"]
    errors(http.get(f"/api/v2/tasks/{task['id']}?wait=-1"), 422)
    assert judicator.calls[-1][0] == "find"  # the bad wait never reached the judicator


def test_task_views_ask_for_a_lean_task_and_the_outputs_view_for_the_whole(
        http: FlaskClient, judicator: StubJudicator) -> None:
    """The views that show a task ask the judicator to leave out its case texts and standard
    outputs (they show neither); the outputs view needs the outputs. A lean task still shows
    its errors and its cases' count."""
    task = create(http, execute={"command": "cat", "cases": [{"input": "1 2", "standard": "3"}]})
    assert judicator.calls[-1] == ("find", (task["id"], 0.0, True))  # the POST's answer
    judicator.finish(task["id"], result=Result(execute_output=b"3\n" * 10,
                                               execute_error=b"[khala] the note\n",
                                               execute_report=StepReport()))
    for query in ("", "?wait=5"):
        shown = http.get(f"/api/v2/tasks/{task['id']}{query}").get_json()["data"]
        assert judicator.calls[-1][0] == "find" and judicator.calls[-1][1][2] is True
        assert shown["execute"]["cases"] == 1
        assert shown["result"]["execute"]["errors"] == ["the note"]
    reply = http.get(f"/api/v2/tasks/{task['id']}/outputs/execute/stdout")
    assert judicator.calls[-1] == ("find", (task["id"], 0.0, False))
    assert reply.get_data() == b"3\n" * 10


def test_list_filters_and_pages_with_a_cursor(http: FlaskClient,
                                              judicator: StubJudicator) -> None:
    ids = [create(http, f"t{i}", user=3 if i % 2 else 4)["id"] for i in range(5)]
    judicator.finish("t1")
    first = http.get("/api/v2/tasks?user=3&limit=1").get_json()
    assert [t["id"] for t in first["data"]] == ["t3"]
    following = http.get(first["links"]["next"]).get_json()
    assert [t["id"] for t in following["data"]] == ["t1"] and following["links"]["next"] is None
    oldest = http.get("/api/v2/tasks?order=oldest&limit=10").get_json()["data"]
    assert [t["id"] for t in oldest] == ids
    done = http.get("/api/v2/tasks?status=success").get_json()["data"]
    assert [t["id"] for t in done] == ["t1"]
    errors(http.get("/api/v2/tasks?cursor=%%%"), 400)
    errors(http.get("/api/v2/tasks?since=yesterday"), 400)
    errors(http.get("/api/v2/tasks?limit=1001"), 422)


def test_outputs_once_done_plain_and_compressed(http: FlaskClient,
                                                judicator: StubJudicator) -> None:
    task = create(http)
    errors(http.get(f"/api/v2/tasks/{task['id']}/outputs/execute/stdout"), 409)
    errors(http.get(f"/api/v2/tasks/{task['id']}/outputs/run/stdout"), 404)
    judicator.finish(task["id"], result=Result(execute_output=b"\xffbytes\n"))
    url = f"/api/v2/tasks/{task['id']}/outputs/execute/stdout"
    assert http.get(url).data == b"\xffbytes\n"
    zipped = http.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == b"\xffbytes\n"
    br = http.get(url, headers={"Accept-Encoding": "gzip;q=0.5, br"})
    assert brotli.decompress(br.data) == b"\xffbytes\n"


# ----------------------------------------------------------------------------- control


def test_signal_cancel_and_delete(http: FlaskClient, judicator: StubJudicator) -> None:
    ref = create(http, "ctl")["id"]
    sent = http.put(f"/api/v2/tasks/{ref}/signals/usr1")
    assert sent.status_code == 202 and sent.get_json()["data"]["signal"] == "SIGUSR1"
    assert judicator.signals == [(judicator.keys["ctl"], 10)]
    errors(http.put(f"/api/v2/tasks/{ref}/signals/NOPE"), 422)
    errors(http.put(f"/api/v2/tasks/{ref}/signals/99"), 422)  # refused by the judicator
    errors(http.delete(f"/api/v2/tasks/{ref}"), 409)  # not done
    cancelled = http.post(f"/api/v2/tasks/{ref}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.get_json()["data"]["status"] == "cancelled"
    errors(http.post(f"/api/v2/tasks/{ref}/cancel"), 409)
    errors(http.put(f"/api/v2/tasks/{ref}/signals/TERM"), 409)
    assert http.delete(f"/api/v2/tasks/{ref}").status_code == 204
    errors(http.delete(f"/api/v2/tasks/{ref}"), 404)
    errors(http.post("/api/v2/tasks/gone/cancel"), 404)


def test_languages_and_executors(http: FlaskClient, judicator: StubJudicator) -> None:
    from khala.model import Language

    judicator.language_list = [
        Language("c", "gcc 12", 2, ["e1", "e2"]),
        Language("kotlin", "kotlinc 1.3", 1, ["e2"], image="judge:3", source="main.kt",
                 time_factor=2.0)]
    assert http.get("/api/v2/languages").get_json()["data"] == [
        {"name": "c", "version": "gcc 12", "image": None, "executors": 2,
         "source_file": "main.c", "time_factor": 1.0, "offered_by": ["e1", "e2"]},
        {"name": "kotlin", "version": "kotlinc 1.3", "image": "judge:3", "executors": 1,
         "source_file": "main.kt", "time_factor": 2.0, "offered_by": ["e2"]}]
    stats = {"name": "e1", "slots": 2, "vacant": 1, "version": "1", "load": [0.1, 0.2, 0.3],
             "memory_total": 8, "memory_available": 4, "report_time": "2020-01-01T00:00:00",
             "tasks": [{"id": "a" * 24, "status": 3, "cpu_time": 1.5, "memory": 9, "pids": 2}]}
    judicator.stats = [stats]
    listed = http.get("/api/v2/executors").get_json()["data"]
    assert [e["name"] for e in listed] == ["e1"] and listed[0]["tasks"][0]["status"] == "running"
    assert http.get("/api/v2/executors/e1").get_json()["data"]["slots"] == 2
    assert "e2" in errors(http.get("/api/v2/executors/e2"), 404)[0]["detail"]


# ----------------------------------------------------------------------------- jobs


def job(**changes: Any) -> dict[str, Any]:
    return {"name": "nightly", "type": "cron", "cron": "0 3 * * *",
            "task": {"user": 2, "priority": -3, "compile": {"command": "true"},
                     "execute": {"command": "make check"}}, **changes}


def test_jobs_create_list_get_restart_delete(http: FlaskClient) -> None:
    made = http.post("/api/v2/jobs", json=job())
    assert made.status_code == 201 and made.headers["Location"] == "/api/v2/jobs/nightly"
    data = made.get_json()["data"]
    assert (data["user"], data["priority"], data["command"]) == (2, -3, "make check")
    assert data["retry"] == {"attempts": 0, "backoff": 1.0} and data["status"] == "waiting"
    errors(http.post("/api/v2/jobs", json=job()), 409)
    assert [j["name"] for j in http.get("/api/v2/jobs").get_json()["data"]] == ["nightly"]
    assert http.get("/api/v2/jobs/nightly").get_json()["data"]["cron"] == "0 3 * * *"
    restarted = http.post("/api/v2/jobs/nightly/restart").get_json()["data"]
    assert restarted["generation"] == 1
    gone = http.delete("/api/v2/jobs/nightly")
    assert gone.status_code == 202 and gone.get_json()["data"] is None
    errors(http.get("/api/v2/jobs/nightly"), 404)
    errors(http.post("/api/v2/jobs/nightly/restart"), 404)


@pytest.mark.parametrize("changes", [
    {"cron": "61 * * * *"},  # refused by the judicator's check
    {"deps": ["nightly"]},  # so is a job that depends on itself
    {"name": "x y"}, {"replica": 0}, {"interval": -1}, {"deps": ["d"] * 33},  # by the model
])
def test_bad_jobs_answer_422(http: FlaskClient, changes: dict[str, Any]) -> None:
    errors(http.post("/api/v2/jobs", json=job(**changes)), 422)


# ----------------------------------------------------------------------------- failures


def test_judicator_failures_answer_503(http: FlaskClient, judicator: StubJudicator) -> None:
    judicator.fail = Unavailable("no judicator answered: none known")
    reply = http.get("/api/v2/tasks/x")
    errors(reply, 503)
    assert reply.headers["Retry-After"] == "1"
    judicator.fail = RemoteError("find: judicator at x:1 answered ERROR", "x:1")
    errors(http.post("/api/v2/jobs", json=job()), 503)
    assert http.get("/proc").get_json()["code"] == 503


def test_routes_no_view_takes_answer_the_envelope(http: FlaskClient) -> None:
    errors(http.get("/api/v2/nothing"), 404)
    reply = http.patch("/api/v2/tasks")
    errors(reply, 405)
    assert set(reply.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    big = {**body(), "execute": {"command": "x" * (SETTINGS.max_task_size * 2)}}
    errors(http.post("/api/v2/tasks", json=big), 413)


def test_keys_refusals_in_the_envelope(tmp_path: Path, judicator: StubJudicator) -> None:
    keys = str(tmp_path / "keys.toml")
    submit, _ = add_key(keys, 7, "submit")
    settings = GatewaySettings(keys_file=keys)
    http = create_app(settings, client=judicator, discovery=StaticDiscovery([])).test_client()
    reply = http.get("/api/v2/tasks")
    errors(reply, 401)
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    auth = {"Authorization": f"Bearer {submit}"}
    errors(http.post("/api/v2/tasks", json=body(user=8), headers=auth), 403)
    mine = http.post("/api/v2/tasks", json=body(), headers=auth).get_json()["data"]
    other = judicator.add(replace(judicator.tasks[mine["seed_id"]], user=9))
    assert http.get(f"/api/v2/tasks/{mine['id']}", headers=auth).status_code == 200
    errors(http.get(f"/api/v2/tasks/{other}", headers=auth), 404)  # not told it exists
    errors(http.post("/api/v2/jobs", json=job(), headers=auth), 403)
    assert judicator.tasks[other].status == Status.PENDING


def test_base64_files_reach_the_task(http: FlaskClient, judicator: StubJudicator) -> None:
    data = base64.b64encode(b"\x00\x01").decode()
    task = create(http, compile={"command": "true", "files": [
        {"path": "a.bin", "content": data, "encoding": "base64"}]})
    assert judicator.tasks[task["seed_id"]].compile.source.startswith(b"PK")
