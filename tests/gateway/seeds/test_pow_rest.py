"""pow-1's REST half over the stub judicator (khala/gateway/pow), and /openapi.json listing
every route the app serves beside API v2's table. Input to a running process and the whole
path: tests/seeds/test_pow_client.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from khala.config import GatewaySettings
from khala.discovery.static import StaticDiscovery
from khala.gateway.app import create_app
from khala.model import Reason, Result, Status, StepReport
from khala.rpc.stub import StubJudicator

CALLS = {"echo": {"compile": {"command": "true"},
                  "execute": {"command": "echo {{0}}", "interactive": True}}}
SETTINGS = GatewaySettings(pow_calls=json.dumps(CALLS))


@pytest.fixture
def judicator() -> StubJudicator:
    return StubJudicator(SETTINGS)


@pytest.fixture
def http(judicator: StubJudicator) -> FlaskClient:
    return create_app(SETTINGS, client=judicator, discovery=StaticDiscovery([])).test_client()


def new(http: FlaskClient, call: str, *params: str) -> Any:
    return http.post("/api/v2/pow/new", data=json.dumps({"call": call, "params": list(params)}))


def test_new_status_and_cancel(http: FlaskClient, judicator: StubJudicator) -> None:
    made = new(http, "echo", "hi")
    assert made.status_code == 200
    ref = made.get_json()
    assert judicator.find(ref).execute.command == "echo hi"
    assert http.get(f"/api/v2/pow/status/{ref}").get_json() == {
        "result": {"status": "pending"}, "buffer": ""}
    cancelled = http.post(f"/api/v2/pow/cancel/{ref}")
    assert (cancelled.status_code, cancelled.get_data(as_text=True)) == (200,
                                                                         "process cancelled")
    status = http.get(f"/api/v2/pow/status/{ref}").get_json()
    assert status["result"] == {"status": "rejected", "reason": "cancelled"}
    again = http.post(f"/api/v2/pow/cancel/{ref}")
    assert (again.status_code, again.get_data(as_text=True)) == (400, "the process has ended")


def test_a_fulfilled_process_has_its_output(http: FlaskClient,
                                            judicator: StubJudicator) -> None:
    task = {"compile": {"command": "true"}, "execute": {"command": "echo x"}}
    ref = new(http, "task", json.dumps(task)).get_json()
    judicator.finish(ref, Status.SUCCESS, Result(compile_output=b"built\n",
                                                 execute_output=b"x\n",
                                                 execute_report=StepReport(exit_code=0)))
    status = http.get(f"/api/v2/pow/status/{ref}").get_json()
    assert status["buffer"] == "built\nx\n"
    assert status["result"]["status"] == "fulfilled" and status["result"]["value"]["id"] == ref
    failed = new(http, "task", json.dumps(task)).get_json()
    judicator.finish(failed, Status.RUN_FAILED, Result(execute_report=StepReport(
        exit_code=2, reason=Reason.NONZERO_EXIT)))
    assert http.get(f"/api/v2/pow/status/{failed}").get_json()["result"] == {
        "status": "rejected", "reason": "run failed: nonzero_exit (exit code 2)"}


@pytest.mark.parametrize(("body", "words"), [
    ("nope", "the call message is not JSON"), ('{"params": []}', "the call message must be"),
    ('{"call": "zap"}', "unknown call 'zap'; calls: task, attach, echo"),
    ('{"call": "task", "params": ["{}"]}', "invalid task: compile: Field required"),
    ('{"call": "echo", "params": [1]}', "params must be an array of strings"),
])
def test_bad_calls_answer_400_text(http: FlaskClient, body: str, words: str) -> None:
    reply = http.post("/api/v2/pow/new", data=body)
    assert reply.status_code == 400 and reply.mimetype == "text/plain", reply.data
    assert words in reply.get_data(as_text=True)


def test_unknown_processes_and_input_refusals(http: FlaskClient,
                                              judicator: StubJudicator) -> None:
    for path in ("status/nope", "input/nope", "closeInput/nope", "cancel/nope"):
        method = http.get if path.startswith("status") else http.post
        reply = method(f"/api/v2/pow/{path}")
        assert (reply.status_code, reply.get_data(as_text=True)) == (404, "process not found")
    plain = json.dumps({"compile": {"command": "true"}, "execute": {"command": "cat"}})
    ref = new(http, "task", plain).get_json()
    reply = http.post(f"/api/v2/pow/input/{ref}", data="x")
    assert reply.status_code == 400 and "takes no input" in reply.get_data(as_text=True)
    judicator.finish(ref)
    reply = http.post(f"/api/v2/pow/closeInput/{ref}")
    assert (reply.status_code, reply.get_data(as_text=True)) == (400, "the process has ended")
    attached = new(http, "attach", ref)
    assert attached.get_json() == ref
    assert new(http, "attach", "f" * 24).status_code == 404


def test_openapi_lists_every_route_the_app_serves(http: FlaskClient) -> None:
    document = http.get("/openapi.json").get_json()
    paths = document["paths"]
    app = http.application
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in ("v2", "live", "procstar", "pow", "meproc",
                                               "duxcore"):
            continue
        if rule.endpoint in ("v2.openapi", "v2.docs", "v2.docs_asset", "live.pow_http"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # <int:version> → {version}
        assert path in paths, rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], (method, rule.rule)
    assert "/api/v2/pow" in paths and "/api/v2/tasks/{id}/events" in paths
