"""Procstar's /procs over the stub judicator (khala/gateway/procstar): the spec as a task, every
route's answer and refusal, results with their status and rusage, raw outputs in gz/gzip/br.
A running process's output and the whole path: tests/seeds/test_procstar_client.py."""

from __future__ import annotations

import gzip
import json
import os
import shlex
from typing import Any

import brotli
import pytest
from flask.testing import FlaskClient

from khala.config import GatewaySettings
from khala.discovery.static import StaticDiscovery
from khala.gateway.app import create_app
from khala.gateway.encoding import choose_encoding as accepted_encoding
from khala.gateway.procstar.spec import ProcSpec, script
from khala.model import Reason, Result, Rusage, Status, StepReport
from khala.rpc.stub import StubJudicator

SETTINGS = GatewaySettings()


@pytest.fixture
def judicator() -> StubJudicator:
    return StubJudicator(SETTINGS)


@pytest.fixture
def http(judicator: StubJudicator) -> FlaskClient:
    return create_app(SETTINGS, client=judicator, discovery=StaticDiscovery([])).test_client()


def errors(reply: Any, status: int) -> str:
    assert reply.status_code == status, reply.get_data(as_text=True)
    items = reply.get_json()["errors"]
    assert len(items) == 1 and items[0]["status"] == status, items
    return str(items[0]["detail"])


def finish(judicator: StubJudicator, proc_id: str, report: StepReport,
           out: bytes = b"out\n", err: bytes = b"") -> None:
    judicator.finish("procs." + proc_id, Status.SUCCESS if report.reason == Reason.OK
                     else Status.RUN_FAILED,
                     Result(execute_output=out, execute_error=err, execute_report=report))


def test_the_spec_becomes_an_exec_of_argv() -> None:
    spec = ProcSpec(argv=["printf", "%s\n", "it's $HOME"], env={"vars": {"A_B": "x y"}})
    first, rest = script(spec).split("\n", 1)
    assert shlex.split(first) == ["export", "A_B=x y"]
    assert shlex.split(rest) == ["exec", "--", "printf", "%s\n", "it's $HOME"]


def test_create_get_list_and_the_ids(http: FlaskClient, judicator: StubJudicator) -> None:
    made = http.post("/procs/p1", json={"argv": ["/bin/true"]})
    assert made.status_code == 201 and made.headers["Location"] == "/procs/p1"
    proc = made.get_json()["data"]["proc"]
    assert (proc["pid"], proc["status"], proc["rusage"], proc["errors"]) == (None, None, None, [])
    assert proc["fds"]["stdout"] == {"type": "capture", "length": 0, "start": 0,
                                     "complete": False}
    task = judicator.find("procs.p1")
    assert (task.compile.command, task.execute.command) == ("true", "exec -- /bin/true\n")
    # a process id that exists: 400, as the seed says (also with the same spec)
    assert "exists" in errors(http.post("/procs/p1", json={"argv": ["/bin/true"]}), 400)
    auto = http.post("/procs", json={"argv": ["echo", "hi"]})
    assert auto.status_code == 201
    auto_id = auto.headers["Location"].removeprefix("/procs/")
    assert http.get(f"/procs/{auto_id}").get_json()["data"]["proc"]["khala"]["state"] == \
        "pending"
    judicator.submit([])  # tasks that are no processes are not listed
    listed = http.get("/procs").get_json()["data"]["procs"]
    assert set(listed) == {"p1", auto_id}


@pytest.mark.parametrize(("body", "words"), [
    ({}, "argv: Field required"), ({"argv": []}, "argv: List should have at least 1 item"),
    ({"argv": ["x"], "fds": []}, "fds: Extra inputs are not permitted"),
    ({"argv": ["x"], "env": {"vars": {"1X": "y"}}}, "'1X' is not a variable name"),
    ({"argv": ["a\0b"]}, "NUL"), ({"argv": ["x"], "core_limit": 0}, "core_limit"),
])
def test_bad_specs_answer_400(http: FlaskClient, body: dict[str, Any], words: str) -> None:
    assert words in errors(http.post("/procs/bad", data=json.dumps(body)), 400)


def test_a_completed_result(http: FlaskClient, judicator: StubJudicator) -> None:
    http.post("/procs/done", json={"argv": ["x"]})
    usage = Rusage(utime=0.5, stime=0.25, maxrss=3 << 20, minflt=10, nvcsw=2)
    finish(judicator, "done", StepReport(exit_code=3, reason=Reason.NONZERO_EXIT, rusage=usage,
                                         pid=4242))
    proc = http.get("/procs/done").get_json()["data"]["proc"]
    assert proc["status"] == {"status": 3 << 8, "exit_code": 3, "signum": None,
                              "core_dump": False}
    assert proc["pid"] == 4242 and proc["errors"] == []
    assert proc["rusage"]["utime"] == 0.5 and proc["rusage"]["maxrss"] == 3 << 20
    assert set(proc["rusage"]) == {"utime", "stime", "maxrss", "ixrss", "idrss", "isrss",
                                   "minflt", "majflt", "nswap", "inblock", "oublock", "msgsnd",
                                   "msgrcv", "nsignals", "nvcsw", "nivcsw"}
    assert None not in proc["rusage"].values()
    assert "text" not in proc["fds"]["stdout"]
    with_text = http.get("/procs/done?fds").get_json()["data"]["proc"]["fds"]["stdout"]
    assert (with_text["text"], with_text["complete"]) == ("out\n", True)


def test_a_signal_and_a_core_dump(http: FlaskClient, judicator: StubJudicator) -> None:
    http.post("/procs/crash", json={"argv": ["x"]})
    finish(judicator, "crash", StepReport(signal=11, core_dump=True, reason=Reason.SIGNALED,
                                          rusage=Rusage()))
    status = http.get("/procs/crash").get_json()["data"]["proc"]["status"]
    assert status == {"status": 11 | 0x80, "exit_code": None, "signum": 11, "core_dump": True}
    assert os.WCOREDUMP(status["status"]) and os.WTERMSIG(status["status"]) == 11


def test_fds_json_and_raw_in_every_encoding(http: FlaskClient, judicator: StubJudicator) -> None:
    http.post("/procs/o", json={"argv": ["x"]})
    finish(judicator, "o", StepReport(exit_code=0, rusage=Rusage()), out=b"\xff\x00bytes" * 50,
           err=b"warn\n")
    fd = http.get("/procs/o/fds/stderr").get_json()["data"]
    assert (fd["fd"], fd["text"], fd["encoding"]) == ("stderr", "warn\n", "utf-8")
    assert http.get("/procs/o/fds/1").get_json()["data"]["encoding"] == "base64"
    assert http.get("/procs/o/fds/1/out").data == b"\xff\x00bytes" * 50
    for asked, coding, decode in (("gz", "gzip", gzip.decompress),
                                  ("gzip", "gzip", gzip.decompress),
                                  ("br", "br", brotli.decompress)):
        raw = http.get("/procs/o/fds/stdout/out", headers={"Accept-Encoding": asked})
        assert raw.headers["Content-Encoding"] == coding
        assert decode(raw.data) == b"\xff\x00bytes" * 50
    assert "no fd '3'" in errors(http.get("/procs/o/fds/3"), 404)


def test_accepted_encoding() -> None:
    assert accepted_encoding("gz") == "gzip"
    assert accepted_encoding("gzip;q=0.5, br") == "br"
    assert accepted_encoding("br;q=0.1, gz") == "gzip"
    assert accepted_encoding("identity") is None
    assert accepted_encoding("br;q=0") is None
    assert accepted_encoding("*") == "br" and accepted_encoding("x-gzip;q=0.3") == "gzip"


def test_delete_and_signal_follow_the_state(http: FlaskClient, judicator: StubJudicator) -> None:
    http.post("/procs/s", json={"argv": ["sleep", "9"]})
    assert "not completed" in errors(http.delete("/procs/s"), 409)
    sent = http.put("/procs/s/signals/TERM")
    assert sent.status_code == 200 and sent.get_json()["data"] == {"signal": "SIGTERM"}
    assert judicator.signals[-1][1] == 15
    assert "unknown signal" in errors(http.put("/procs/s/signals/NOPE"), 400)
    finish(judicator, "s", StepReport(signal=15, reason=Reason.SIGNALED, rusage=Rusage()))
    assert "has completed" in errors(http.put("/procs/s/signals/9"), 409)
    assert http.delete("/procs/s").get_json() == {"data": {}}
    assert "no process 's'" in errors(http.get("/procs/s"), 404)
    assert "no process" in errors(http.delete("/procs/s"), 404)


def test_khala_stopping_a_process_is_an_error(http: FlaskClient,
                                              judicator: StubJudicator) -> None:
    http.post("/procs/w", json={"argv": ["sleep", "9"], "timeout": 1})
    finish(judicator, "w", StepReport(signal=9, reason=Reason.WALL_LIMIT, rusage=Rusage()))
    proc = http.get("/procs/w").get_json()["data"]["proc"]
    assert proc["errors"] == ["stopped by Khala: wall_limit"] and proc["status"]["signum"] == 9


def test_unknown_routes_answer_the_envelope(http: FlaskClient) -> None:
    assert "no such route" in errors(http.get("/procs/a/b"), 404)
    assert "not allowed" in errors(http.patch("/procs"), 405)
