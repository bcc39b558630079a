"""The gateway's HTTP logic through Flask's test client, with an in-memory stub judicator.

Only the HTTP layer is under test here (routes, validation, rendering, truncation, files, error
shapes); the stub speaks the judicator client's domain API (khala/rpc/client.py), and the real
cluster is exercised in tests/gateway/test_http_api.py.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from khala.config import GatewaySettings
from khala.discovery.base import JudicatorEntry
from khala.discovery.static import StaticDiscovery
from khala.errors import InvalidInput, KhalaError, NotFound, RemoteError, TooLarge, Unavailable
from khala.model import (
    ExecutorInfo,
    Result,
    SearchQuery,
    Status,
    StepReport,
    Task,
    TaskBrief,
    new_id,
)
from khala.zipcheck import make_zip

MISSING_ID = "0123456789abcdef01234567"


class StubJudicator:
    """The judicator client's typed methods over tasks kept in memory."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.down = False  # no judicator answers: Unavailable
        self.refuse: KhalaError | None = None  # every call answers with this error

    def _called(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        if self.down:
            raise Unavailable("no judicator answered: test")
        if self.refuse is not None:
            raise self.refuse

    def add(self, task: Task) -> str:
        self._called("add", task)
        stored = replace(task, id=new_id(), add_time="2020-01-01T00:00:00.000000")
        stored.status = Status.PENDING
        self.tasks[stored.id] = stored
        return stored.id

    def cancel(self, id: str) -> None:  # noqa: A002
        self._called("cancel", id)
        task = self.tasks.get(id)
        if task is None or task.done:
            raise NotFound(id)
        task.done, task.status = True, Status.CANCELLED

    def get(self, id: str) -> Task:  # noqa: A002
        self._called("get", id)
        if id not in self.tasks:
            raise NotFound(id)
        return self.tasks[id]

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        self._called("search", query)
        briefs = [t.brief() for t in self.tasks.values()]
        return (1 if briefs else 0), briefs

    def executors(self) -> list[ExecutorInfo]:
        self._called("executors")
        return [
            ExecutorInfo(id=MISSING_ID, hostname="executor.1", report_time="2020-01-01T12:00:00.0")
        ]

    def finish(self, task_id: str, result: Result, status: int = Status.SUCCESS) -> None:
        task = self.tasks[task_id]
        task.done, task.status, task.executor = True, status, "executor.1"
        task.report_time = "2020-01-01T00:00:01.000000"
        task.result = result


@pytest.fixture
def judicator() -> StubJudicator:
    return StubJudicator()


@pytest.fixture
def app(judicator: StubJudicator) -> Flask:
    settings = GatewaySettings(max_task_size=100_000, truncate=10)
    discovery = StaticDiscovery(["127.0.0.1:4001", "127.0.0.1:4002"], "/khala")
    return create(settings, judicator, discovery)


def create(settings: GatewaySettings, judicator: StubJudicator, discovery: Any) -> Flask:
    from khala.gateway.app import create_app

    return create_app(settings, client=judicator, discovery=discovery)


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


def task_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "user": "3",
        "compile_source_name": "main.sh",
        "compile_source_str": "echo hi",
        "compile_command": "true",
        "compile_timeout": "1",
        "execute_input": "1 2",
        "execute_data_name": "",
        "execute_data_str": "",
        "execute_command": "cat",
        "execute_timeout": "2",
        "execute_standard": "3",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def add(http: FlaskClient, **changes: Any) -> dict[str, Any]:
    reply = http.post("/api/task", data=task_form(**changes))
    assert reply.status_code == 200
    return reply.get_json()  # type: ignore[no-any-return]


def upload(data: bytes, name: str = "upload.zip") -> tuple[io.BytesIO, str]:
    return io.BytesIO(data), name


# ----------------------------------------------------------------------------- test, index


def test_test_endpoint(http: FlaskClient) -> None:
    reply = http.get("/api/test")
    assert reply.status_code == 200
    assert reply.get_data(as_text=True) == "Khala gateway server is working."


def test_index_lists_api(http: FlaskClient) -> None:
    assert "/api/task" in http.get("/api").get_data(as_text=True)


# ----------------------------------------------------------------------------- add


def test_add_forwards_task(http: FlaskClient, judicator: StubJudicator) -> None:
    body = add(http)
    assert body["result"] == 0 and body["id"] in judicator.tasks
    task = judicator.tasks[body["id"]]
    assert task.user == 3 and task.compile.command == "true" and task.compile.timeout == 1
    with zipfile.ZipFile(io.BytesIO(task.compile.source)) as archive:
        assert archive.read("main.sh") == b"echo hi"
    assert task.execute.data == b""
    assert (task.execute.input, task.execute.command, task.execute.timeout) == ("1 2", "cat", 2)


def test_add_with_uploads(http: FlaskClient, judicator: StubJudicator) -> None:
    source, data = make_zip("a.c", "int main(){}"), make_zip("in/raw.dat", "xyz")
    body = add(http, compile_source=upload(source), execute_data=upload(data))
    task = judicator.tasks[body["id"]]
    assert (task.compile.source, task.execute.data) == (source, data)


def test_add_empty_upload_does_not_override(http: FlaskClient, judicator: StubJudicator) -> None:
    body = add(http, compile_source=upload(b""))
    task = judicator.tasks[body["id"]]
    with zipfile.ZipFile(io.BytesIO(task.compile.source)) as archive:
        assert archive.namelist() == ["main.sh"]


def test_add_with_limits(http: FlaskClient, judicator: StubJudicator) -> None:
    body = add(
        http,
        compile_memory_limit="1000000",
        execute_memory_limit="2000000",
        execute_cpu_limit="3",
        execute_pids_limit="4",
        execute_output_limit="5000",
    )
    task = judicator.tasks[body["id"]]
    assert task.compile.memory_limit == 1000000
    assert (task.execute.memory_limit, task.execute.cpu_limit) == (2000000, 3)
    assert (task.execute.pids_limit, task.execute.output_limit) == (4, 5000)


@pytest.mark.parametrize(
    "changes",
    [
        {"user": None},
        {"user": "-1"},
        {"user": "2147483648"},
        {"compile_timeout": "soon"},
        {"execute_timeout": None},
        {"compile_command": None},
        {"execute_standard": None},
        {"compile_source_name": "../escape"},
        {"compile_source_name": "/abs"},
        {"execute_data": (io.BytesIO(b"not a zip"), "x.zip")},
        {"execute_cpu_limit": "0"},
        {"execute_memory_limit": "-1"},
        {"compile_memory_limit": "4611686018427387905"},
        {"execute_pids_limit": "2147483648"},
        {"execute_output_limit": "big"},
    ],
)
def test_add_invalid(http: FlaskClient, judicator: StubJudicator, changes: dict[str, Any]) -> None:
    body = add(http, **changes)
    field = next(iter(changes)).replace("_name", "")  # compile_source_name: compile_source...
    assert field.split("_")[0] in without_error(body) and body == {"result": 4, "id": None}
    assert judicator.tasks == {}


def without_error(body: dict[str, Any]) -> str:
    """A seed refusal's added `error` text (taken out of `body`, which keeps the seed's
    keys); it must say something."""
    error = body.pop("error")
    assert isinstance(error, str) and error
    return error


def test_add_invalid_names_the_field(http: FlaskClient) -> None:
    assert "execute_timeout" in add(http, execute_timeout="soon")["error"]
    assert "execute_cpu_limit" in add(http, execute_cpu_limit="0")["error"]
    assert add(http, user="-1")["error"].startswith("user ")


def test_add_too_large(http: FlaskClient, judicator: StubJudicator) -> None:
    assert add(http, execute_input="x" * 99_000)["result"] == 0
    body = add(http, execute_input="x" * 100_001)
    assert "bytes" in without_error(body) and body == {"result": 3, "id": None}
    assert len(judicator.tasks) == 1


def test_add_body_too_large_is_json(http: FlaskClient) -> None:
    huge = make_zip("a", "")  # a valid tiny zip padded far beyond the body limit
    reply = http.post("/api/task", data=task_form(execute_data=upload(huge + b"\0" * 2_000_000)))
    assert reply.status_code == 200
    body = reply.get_json()
    assert "larger than" in without_error(body) and body == {"result": 3, "id": None}


@pytest.mark.parametrize(
    ("refusal", "code"),
    [(TooLarge("big"), 3), (InvalidInput("bad"), 4), (RemoteError("store down", "x:1"), 1)],
)
def test_add_judicator_refusal_passes_through(
    http: FlaskClient, judicator: StubJudicator, refusal: KhalaError, code: int
) -> None:
    judicator.refuse = refusal
    body = add(http)
    if code != 1:  # a refusal says why; an unreachable store is result 1 as before
        assert without_error(body) == str(refusal)
    assert body == {"result": code, "id": None}
    assert judicator.tasks == {}


def test_add_unavailable(http: FlaskClient, judicator: StubJudicator) -> None:
    judicator.down = True
    assert add(http) == {"result": 1, "id": None}


# ----------------------------------------------------------------------------- cancel


def test_cancel(http: FlaskClient, judicator: StubJudicator) -> None:
    task_id = add(http)["id"]
    assert http.delete(f"/api/task?id={task_id}").get_json() == {"result": 0}
    assert judicator.tasks[task_id].status == Status.CANCELLED
    assert http.delete(f"/api/task?id={task_id}").get_json() == {"result": 2}
    assert http.delete(f"/api/task?id={MISSING_ID}").get_json() == {"result": 2}


@pytest.mark.parametrize("query", ["", "?id=", "?id=xyz", "?id=0123456789ABCDEF01234567"])
def test_cancel_invalid(http: FlaskClient, judicator: StubJudicator, query: str) -> None:
    body = http.delete("/api/task" + query).get_json()
    assert "id" in without_error(body) and body == {"result": 4}
    assert judicator.calls == []


def test_cancel_unavailable(http: FlaskClient, judicator: StubJudicator) -> None:
    judicator.down = True
    assert http.delete(f"/api/task?id={MISSING_ID}").get_json() == {"result": 1}


# ----------------------------------------------------------------------------- search


def test_search_passes_filters(http: FlaskClient, judicator: StubJudicator) -> None:
    task_id = add(http)["id"]
    reply = http.get(
        f"/api/task/list?id={task_id}&user=3&start_time=2020-01-01T00:00:00"
        "&end_time=2020-01-02T00:00:00%2B01:00&old_to_new=1&limit=5&page=1"
    )
    body = reply.get_json()
    assert body["result"] == 0 and body["pages"] == 1
    assert body["tasks"] == [
        {
            "id": task_id,
            "user": 3,
            "add_time": "2020-01-01T00:00:00.000000",
            "done": False,
            "status": 0,
            "executor": None,
            "report_time": "",
        }
    ]
    expected = SearchQuery(
        task_id, 3, "2020-01-01T00:00:00.000000", "2020-01-01T23:00:00.000000", True, 5, 1
    )
    assert judicator.calls[-1] == ("search", (expected,))


def test_search_unset_filters_are_none(http: FlaskClient, judicator: StubJudicator) -> None:
    body = http.get("/api/task/list").get_json()
    assert body == {"result": 0, "pages": 0, "tasks": []}
    assert judicator.calls[-1] == ("search", (SearchQuery(None, None, None, None, False, 0, 0),))


@pytest.mark.parametrize(
    "query",
    [
        "id=abc",
        "user=x",
        "user=-5",
        "start_time=never",
        "end_time=2020-02-30",
        "limit=-1",
        "page=2147483648",
        "limit=1.5",
    ],
)
def test_search_invalid(http: FlaskClient, judicator: StubJudicator, query: str) -> None:
    body = http.get("/api/task/list?" + query).get_json()
    assert query.split("=")[0] in without_error(body)
    assert body == {"result": 4, "pages": 0, "tasks": []}
    assert judicator.calls == []


def test_search_unavailable(http: FlaskClient, judicator: StubJudicator) -> None:
    judicator.down = True
    assert http.get("/api/task/list").get_json() == {"result": 1, "pages": 0, "tasks": []}


# ----------------------------------------------------------------------------- get


def test_get_pending_task(http: FlaskClient) -> None:
    task_id = add(http)["id"]
    body = http.get(f"/api/task?id={task_id}").get_json()
    assert body["result"] == 0
    task = body["task"]
    assert list(task) == [
        "id", "user", "add_time", "done", "status", "executor", "report_time",
        "compile", "execute", "result",
    ]  # fmt: skip
    assert task["id"] == task_id and task["user"] == 3 and task["done"] is False
    assert task["compile"] == {"source": True, "command": "true", "timeout": 1}
    assert task["execute"] == {
        "input": "1 2",
        "data": False,
        "execute_command": "cat",
        "execute_timeout": 2,
        "execute_standard": "3",
    }
    assert task["result"] is None and task["executor"] is None


def test_get_shows_limits_when_set(http: FlaskClient) -> None:
    task_id = add(http, compile_memory_limit="1000", execute_cpu_limit="2")["id"]
    task = http.get(f"/api/task?id={task_id}").get_json()["task"]
    assert task["compile"]["memory_limit"] == 1000
    assert task["execute"]["cpu_limit"] == 2
    assert "memory_limit" not in task["execute"] and "pids_limit" not in task["execute"]


def finished(http: FlaskClient, judicator: StubJudicator, **result: Any) -> str:
    task_id: str = add(http, execute_input="input-long-text", execute_standard="")["id"]
    outputs = {k: v.encode() if isinstance(v, str) else v for k, v in result.items()}
    judicator.finish(task_id, Result(**outputs))
    return task_id


def test_get_done_task_with_reports(http: FlaskClient, judicator: StubJudicator) -> None:
    report = StepReport(exit_code=0, time=0.25, wall_time=0.5, memory=4096, reason="ok")
    killed = StepReport(signal=9, core_dump=True, memory=1 << 20, reason="memory_limit")
    task_id = finished(
        http, judicator, compile_output="built", execute_error="oops",
        compile_report=report, execute_report=killed,
    )  # fmt: skip
    task = http.get(f"/api/task?id={task_id}").get_json()["task"]
    assert task["done"] is True and task["status"] == 5 and task["executor"] == "executor.1"
    assert task["report_time"] == "2020-01-01T00:00:01.000000"
    assert task["result"] == {
        "compile_output": "built",
        "compile_error": "",
        "execute_output": "",
        "execute_error": "oops",
        "compile": {"exit_code": 0, "signal": None, "core_dump": False, "time": 0.25,
                    "wall_time": 0.5, "memory": 4096, "reason": "ok"},
        "execute": {"exit_code": None, "signal": 9, "core_dump": True, "time": 0.0,
                    "wall_time": 0.0, "memory": 1 << 20, "reason": "memory_limit"},
    }  # fmt: skip


def test_get_truncates_long_text(http: FlaskClient, judicator: StubJudicator) -> None:
    long_output = "0123456789abcdef"
    task_id = finished(http, judicator, execute_output=long_output, compile_error="exactly10!")
    task = http.get(f"/api/task?id={task_id}").get_json()["task"]
    assert task["result"]["execute_output"] == long_output[:10] + "..."
    assert task["result"]["compile_error"] == "exactly10!"
    assert task["execute"]["input"] == "input-long..."
    full = http.get(f"/api/task?id={task_id}&no_truncate=1").get_json()["task"]
    assert full["result"]["execute_output"] == long_output
    assert full["execute"]["input"] == "input-long-text"
    empty_flag = http.get(f"/api/task?id={task_id}&no_truncate=").get_json()["task"]
    assert empty_flag["result"]["execute_output"] == long_output[:10] + "..."


def test_get_missing_and_invalid(http: FlaskClient) -> None:
    assert http.get(f"/api/task?id={MISSING_ID}").get_json() == {"result": 2, "task": None}
    for query in ["", "?id=", "?id=short", "?id=" + "G" * 24]:
        body = http.get("/api/task" + query).get_json()
        assert "id" in without_error(body) and body == {"result": 4, "task": None}


def test_get_unavailable(http: FlaskClient, judicator: StubJudicator) -> None:
    judicator.down = True
    assert http.get(f"/api/task?id={MISSING_ID}").get_json() == {"result": 1, "task": None}
    assert http.get(f"/api/task?id={MISSING_ID}&file=execute_input").status_code == 503


# ----------------------------------------------------------------------------- files


def test_zip_downloads(http: FlaskClient) -> None:
    data = make_zip("raw.dat", "payload")
    task_id = add(http, execute_data=upload(data))["id"]
    reply = http.get(f"/api/task?id={task_id}&file=execute_data")
    assert reply.status_code == 200 and reply.data == data
    assert reply.mimetype == "application/zip"
    expected = f"attachment; filename={task_id}_execute_data.zip"
    assert reply.headers["Content-Disposition"] == expected
    source = http.get(f"/api/task?id={task_id}&file=compile_source")
    with zipfile.ZipFile(io.BytesIO(source.data)) as archive:
        assert archive.read("main.sh") == b"echo hi"


def test_text_downloads_are_never_truncated(http: FlaskClient, judicator: StubJudicator) -> None:
    texts = {
        "compile_output": "compile out é",
        "compile_error": "compile err",
        "execute_output": "x" * 50,
        "execute_error": "execute err",
    }
    task_id = finished(http, judicator, **texts)
    expected = {
        **texts,
        "compile_command": "true",
        "execute_input": "input-long-text",
        "execute_command": "cat",
    }
    for name, text in expected.items():
        reply = http.get(f"/api/task?id={task_id}&file={name}")
        assert reply.status_code == 200, name
        assert reply.data == text.encode("utf-8")
        assert reply.mimetype == "text/plain"
        assert reply.headers["Content-Disposition"] == f"attachment; filename={task_id}_{name}.txt"


def test_file_404s(http: FlaskClient, judicator: StubJudicator) -> None:
    task_id = finished(http, judicator, execute_output="out")
    for query in [
        f"id={task_id}&file=execute_data",  # empty zip
        f"id={task_id}&file=execute_standard",  # empty text
        f"id={task_id}&file=compile_error",  # empty result text
        f"id={task_id}&file=passwd",  # unknown name
        f"id={MISSING_ID}&file=execute_output",  # unknown task
        "id=bad&file=execute_output",  # invalid id
    ]:
        assert http.get("/api/task?" + query).status_code == 404, query
    assert http.get(f"/api/task?id={task_id}&file=execute_output").status_code == 200


def test_result_files_of_undone_task_are_404(http: FlaskClient) -> None:
    task_id = add(http)["id"]
    assert http.get(f"/api/task?id={task_id}&file=execute_output").status_code == 404


# ----------------------------------------------------------------------------- cluster


def test_executors(http: FlaskClient) -> None:
    assert http.get("/api/executors").get_json() == {
        "result": 0,
        "executors": [
            {"id": MISSING_ID, "hostname": "executor.1", "report_time": "2020-01-01T12:00:00.0"}
        ],
    }


def test_executors_unavailable(http: FlaskClient, judicator: StubJudicator) -> None:
    judicator.down = True
    assert http.get("/api/executors").get_json() == {"result": 1, "executors": []}


def test_judicators_from_discovery(http: FlaskClient, judicator: StubJudicator) -> None:
    assert http.get("/api/judicators").get_json() == {
        "result": 0,
        "judicators": [
            {"name": "/khala/judicators/static.0", "address": "127.0.0.1:4001"},
            {"name": "/khala/judicators/static.1", "address": "127.0.0.1:4002"},
        ],
    }
    assert judicator.calls == []


class BrokenDiscovery:
    def judicators(self) -> list[JudicatorEntry]:
        raise Unavailable("etcd down")


def test_judicators_unavailable(judicator: StubJudicator) -> None:
    app = create(GatewaySettings(), judicator, BrokenDiscovery())
    body = app.test_client().get("/api/judicators").get_json()
    assert body == {"result": 1, "judicators": []}


class ExplodingJudicator(StubJudicator):
    def _called(self, method: str, *args: Any) -> None:
        raise RuntimeError("bug")


def test_unexpected_error_is_json(app: Flask) -> None:
    app = create(GatewaySettings(), ExplodingJudicator(), StaticDiscovery([]))
    client = app.test_client()
    reply = client.get("/api/executors")
    assert reply.status_code == 200 and reply.get_json() == {"result": 1, "executors": []}
    assert client.get(f"/api/task?id={MISSING_ID}").get_json() == {"result": 1, "task": None}


def test_wrong_method(http: FlaskClient) -> None:
    assert http.put("/api/task").status_code == 405


def test_unicode_text_round_trip(judicator: StubJudicator, http: FlaskClient) -> None:
    task_id = add(http, execute_input="ünïcödé ✓")["id"]
    assert judicator.tasks[task_id].execute.input == "ünïcödé ✓"
    body = http.get(f"/api/task?id={task_id}&no_truncate=1").get_json()
    assert body["task"]["execute"]["input"] == "ünïcödé ✓"


def test_judicator_error_answers(http: FlaskClient, judicator: StubJudicator) -> None:
    judicator.refuse = RemoteError("get: judicator at x:1 answered code 1", "x:1")
    assert http.get(f"/api/task?id={MISSING_ID}").get_json() == {"result": 1, "task": None}
    reply = http.get(f"/api/task?id={MISSING_ID}&file=execute_input")
    assert (reply.status_code, reply.data) == (503, b"unavailable\n")
    assert http.delete(f"/api/task?id={MISSING_ID}").get_json() == {"result": 1}
    assert http.get("/api/task/list").get_json() == {"result": 1, "pages": 0, "tasks": []}
    assert http.get("/api/executors").get_json() == {"result": 1, "executors": []}


def test_judicator_refusals_pass_through(http: FlaskClient, judicator: StubJudicator) -> None:
    judicator.refuse = InvalidInput("bad id")  # the judicator's reason comes along
    assert http.get(f"/api/task?id={MISSING_ID}").get_json() == {
        "result": 4, "task": None, "error": "bad id"}
    assert http.get(f"/api/task?id={MISSING_ID}&file=execute_input").status_code == 404
    assert http.delete(f"/api/task?id={MISSING_ID}").get_json() == {"result": 4, "error": "bad id"}
    assert http.get("/api/task/list").get_json() == {
        "result": 4, "pages": 0, "tasks": [], "error": "bad id"}
    judicator.refuse = NotFound("gone")
    assert http.get(f"/api/task?id={MISSING_ID}").get_json() == {"result": 2, "task": None}
