"""pow-1 (seed 002) over REST as the pow-1 server's OpenAPI document describes it, through a
client written from those texts alone (tests/seeds/clients/pow.py), against a real cluster:
create, input, close, cancel, status and result; the websocket and the REST half share calls
and tasks; /openapi.json lists the REST routes with the websocket and the event stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.seeds.clients.pow import PowError, PowRest, PowSocket
from tests.seeds.conftest import Seeds

pytestmark = pytest.mark.integration

INTERACTIVE = {"compile": {"command": "true"},
               "execute": {"command": "cat", "timeout": 60, "interactive": True}}


def until(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")


@pytest.fixture(scope="module")
def rest(seeds: Seeds) -> PowRest:
    return PowRest(seeds.url + "/api/v2/pow", seeds.headers())


def settled(rest: PowRest, process: str) -> dict[str, Any]:
    return until(lambda: (s := rest.status(process))["result"]["status"] != "pending" and s,  # type: ignore[return-value]
                 f"process {process} settled")


def test_input_close_and_result(rest: PowRest) -> None:
    process = rest.new("task", [json.dumps(INTERACTIVE)])
    # input sent at once: queued until the process runs, each byte once and in order
    for line in ("alpha\n", "beta\n", "gamma\n"):
        assert rest.input(process, line) == "input sent"
    seen = until(lambda: (b := rest.status(process)["buffer"]).count("\n") >= 3 and b,
                 "the echoed input")
    assert seen == "alpha\nbeta\ngamma\n"
    assert rest.status(process)["result"] == {"status": "pending"}
    assert rest.close_input(process) == "input closed"
    status = settled(rest, process)
    assert status["result"]["status"] == "fulfilled"
    assert status["result"]["value"]["status"] == "success"
    assert status["buffer"] == "alpha\nbeta\ngamma\n"
    with pytest.raises(PowError) as ended:
        rest.input(process, "late\n")
    assert ended.value.status == 400


def test_a_server_defined_call_with_params(rest: PowRest) -> None:
    process = rest.new("shout")
    rest.input(process, "quiet words\n")
    rest.close_input(process)
    status = settled(rest, process)
    assert status["result"]["status"] == "fulfilled" and status["buffer"] == "QUIET WORDS\n"
    greeted = settled(rest, rest.new("greet", ["world"]))
    assert greeted["buffer"] == "hello world\n"


def test_cancel(rest: PowRest) -> None:
    process = rest.new("task", [json.dumps(INTERACTIVE)])
    rest.input(process, "x\n")  # it runs
    assert rest.cancel(process) == "process cancelled"
    assert settled(rest, process)["result"] == {"status": "rejected", "reason": "cancelled"}


def test_errors(rest: PowRest) -> None:
    with pytest.raises(PowError) as unknown:
        rest.status("no-such-process")
    assert (unknown.value.status, unknown.value.text) == (404, "process not found")
    with pytest.raises(PowError) as bad:
        rest.new("no-such-call")
    assert bad.value.status == 400 and "unknown call" in bad.value.text
    failed = settled(rest, rest.new("task", [json.dumps(
        {"compile": {"command": "true"}, "execute": {"command": "exit 3"}})]))
    assert failed["result"] == {"status": "rejected",
                                "reason": "run failed: nonzero_exit (exit code 3)"}


def test_the_websocket_and_rest_share_the_task(seeds: Seeds, rest: PowRest) -> None:
    process = rest.new("task", [json.dumps(INTERACTIVE)])
    rest.input(process, "over rest\n")
    url = seeds.url.replace("http://", "ws://") + "/api/v2/pow"
    with PowSocket(url, seeds.headers()) as session:
        session.call("attach", [process])
        until(lambda: "over rest" in rest.status(process)["buffer"], "the input ran")
        rest.close_input(process)
        output, result = session.finish()
    assert output == "over rest\n" and result["status"] == "fulfilled"
    assert result["value"]["id"] == process


def test_openapi_lists_the_routes(seeds: Seeds) -> None:
    paths = requests.get(f"{seeds.url}/openapi.json", timeout=30).json()["paths"]
    for path, method in (("/api/v2/pow/new", "post"), ("/api/v2/pow/status/{id}", "get"),
                         ("/api/v2/pow/input/{id}", "post"),
                         ("/api/v2/pow/closeInput/{id}", "post"),
                         ("/api/v2/pow/cancel/{id}", "post"), ("/api/v2/pow", "get"),
                         ("/api/v2/tasks/{id}/events", "get")):
        assert method in paths.get(path, {}), path


def test_behind_the_same_keys(seeds: Seeds) -> None:
    anonymous = PowRest(seeds.url + "/api/v2/pow")
    with pytest.raises(PowError) as refused:
        anonymous.new("greet", ["x"])
    assert refused.value.status == 401
    mine = PowRest(seeds.url + "/api/v2/pow", seeds.headers("submit"))
    theirs = PowRest(seeds.url + "/api/v2/pow", seeds.headers("other"))
    process = mine.new("greet", ["mine"])
    with pytest.raises(PowError) as hidden:
        theirs.status(process)
    assert hidden.value.status == 404
    assert settled(mine, process)["buffer"] == "hello mine\n"
