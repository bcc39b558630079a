"""The seed 004 HTTP API through real processes: gateway (gunicorn) → judicator → executor.

Every endpoint and field, driven with `requests` over loopback against the `cluster` fixture
(tests/fixtures/cluster.py). Each test uses its own user id so searches see only its tasks.
"""

from __future__ import annotations

import io
import itertools
import signal
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from khala.cli.up import free_port, wait_port
from khala.model import INT_MAX, canonical_time, parse_time
from khala.zipcheck import make_zip

TIMEOUT = 30
MISSING_ID = "0123456789abcdef01234567"
USERS = itertools.count(1_000_000 + int(time.time()) % 1_000_000)



def bare(answer: dict[str, Any]) -> dict[str, Any]:
    """A seed refusal without its added `error` (the reason: there for invalid input and too
    large, results 3 and 4; a "not exist" may say why too): the seed's own keys, to compare."""
    error = answer.pop("error", None)
    if answer.get("result") in (3, 4) or error is not None:
        assert isinstance(error, str) and error, answer
    return answer

def url(cluster: Any, path: str) -> str:
    return f"{cluster.gateway_url}{path}"


def form(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "user": next(USERS),
        "compile_source_name": "",
        "compile_source_str": "",
        "compile_command": "true",
        "compile_timeout": 10,
        "execute_input": "",
        "execute_data_name": "",
        "execute_data_str": "",
        "execute_command": "true",
        "execute_timeout": 10,
        "execute_standard": "",
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def post(cluster: Any, data: dict[str, Any], files: Any = None) -> dict[str, Any]:
    reply = requests.post(url(cluster, "/api/task"), data=data, files=files, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def add(cluster: Any, files: Any = None, **changes: Any) -> str:
    answer = post(cluster, form(**changes), files)
    assert answer["result"] == 0 and len(answer["id"]) == 24, answer
    return str(answer["id"])


def search(cluster: Any, **params: Any) -> dict[str, Any]:
    reply = requests.get(url(cluster, "/api/task/list"), params=params, timeout=TIMEOUT)
    assert reply.status_code == 200
    return reply.json()  # type: ignore[no-any-return]


def download(cluster: Any, task_id: str, name: str) -> requests.Response:
    params = {"id": task_id, "file": name}
    return requests.get(url(cluster, "/api/task"), params=params, timeout=TIMEOUT)


# ----------------------------------------------------------------------------- basics


def test_test_endpoint(cluster: Any) -> None:
    reply = requests.get(url(cluster, "/api/test"), timeout=TIMEOUT)
    assert reply.status_code == 200
    assert reply.text == "Khala gateway server is working."


def test_task_from_strings_runs_to_success(cluster: Any) -> None:
    user = next(USERS)
    task_id = add(
        cluster,
        user=user,
        compile_source_name="build.sh",
        compile_source_str=(
            "echo compiled; echo warning >&2; printf 'read a b; echo $((a+b))' > run.sh"
        ),
        compile_command="bash build.sh",
        compile_timeout=5,
        execute_input="1 2",
        execute_data_name="raw.dat",
        execute_data_str="data string",
        execute_command="bash run.sh; cat data/raw.dat >&2",
        execute_timeout=7,
        execute_standard="3",
    )
    task = cluster.wait_done(task_id)
    assert task["id"] == task_id and task["user"] == user
    assert task["done"] is True and task["status"] == 5, task
    assert task["executor"]
    parse_time(task["add_time"]), parse_time(task["report_time"])
    assert task["compile"] == {"source": True, "command": "bash build.sh", "timeout": 5}
    assert task["execute"] == {
        "input": "1 2",
        "data": True,
        "execute_command": "bash run.sh; cat data/raw.dat >&2",
        "execute_timeout": 7,
        "execute_standard": "3",
    }
    result = task["result"]
    assert result["compile_output"] == "compiled\n"
    assert result["compile_error"] == "warning\n"
    assert result["execute_output"] == "3\n"
    assert result["execute_error"] == "data string"
    for step in ("compile", "execute"):
        report = result[step]
        assert report["exit_code"] == 0 and report["reason"] == "ok", report
        assert report["signal"] is None and report["core_dump"] is False
        assert report["wall_time"] >= 0 and report["time"] >= 0 and report["memory"] >= 0


def test_task_from_zip_uploads(cluster: Any) -> None:
    source = zip_of({"src/main.sh": "echo from-zip", "src/lib/helper.sh": "echo helper"})
    data = zip_of({"in/a.txt": "alpha", "b.txt": "beta"})
    task_id = add(
        cluster,
        files={
            "compile_source": ("source.zip", source, "application/zip"),
            "execute_data": ("data.zip", data, "application/zip"),
        },
        compile_source_name="ignored.sh",  # a non-empty upload overrides name + str
        compile_source_str="exit 1",
        compile_command="test ! -e ignored.sh && bash src/main.sh && bash src/lib/helper.sh",
        execute_command="cat data/in/a.txt data/b.txt",
    )
    task = cluster.wait_done(task_id)
    assert task["status"] == 5, task
    assert task["result"]["compile_output"] == "from-zip\nhelper\n"
    assert task["result"]["execute_output"] == "alphabeta"
    assert download(cluster, task_id, "compile_source").content == source
    assert download(cluster, task_id, "execute_data").content == data


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_failures_have_their_status(cluster: Any) -> None:
    compile_failed = add(cluster, compile_command="echo bad >&2; exit 3")
    run_failed = add(cluster, execute_command="exit 4")
    timed_out = add(cluster, execute_command="sleep 30", execute_timeout=1)
    task = cluster.wait_done(compile_failed)
    assert task["status"] == 2 and task["result"]["compile_error"] == "bad\n"
    assert task["result"]["compile"]["exit_code"] == 3
    task = cluster.wait_done(run_failed)
    assert task["status"] == 4 and task["result"]["execute"]["exit_code"] == 4
    task = cluster.wait_done(timed_out)
    assert task["status"] == 4
    assert task["result"]["execute"]["reason"] in ("wall_limit", "time_limit")


# ----------------------------------------------------------------------------- get


def test_truncation_and_no_truncate(cluster: Any) -> None:
    long_input = "i" * 1500
    task_id = add(
        cluster,
        execute_input=long_input,
        execute_command="cat; head -c 2500 /dev/zero | tr '\\0' e >&2",
        execute_standard="s" * 1000,
    )
    task = cluster.get(task_id)["task"]  # before or after it ran: inputs are known already
    assert task["execute"]["input"] == "i" * 1000 + "..."
    assert task["execute"]["execute_standard"] == "s" * 1000  # exactly the limit: not cut
    cluster.wait_done(task_id)
    short = cluster.get(task_id)["task"]
    assert short["result"]["execute_output"] == "i" * 1000 + "..."
    assert short["result"]["execute_error"] == "e" * 1000 + "..."
    full = cluster.get(task_id, no_truncate=1)["task"]
    assert full["execute"]["input"] == long_input
    assert full["result"]["execute_output"] == long_input
    assert full["result"]["execute_error"] == "e" * 2500


def test_get_not_found_and_invalid(cluster: Any) -> None:
    assert bare(cluster.get(MISSING_ID)) == {"result": 2, "task": None}
    for bad in ["", "xyz", MISSING_ID.upper(), MISSING_ID + "0"]:
        assert bare(cluster.get(bad)) == {"result": 4, "task": None}
    reply = requests.get(url(cluster, "/api/task"), timeout=TIMEOUT)
    assert bare(reply.json()) == {"result": 4, "task": None}


def test_every_file_download(cluster: Any) -> None:
    texts = {
        "compile_command": "echo c-out; echo c-err >&2",
        "execute_input": "stdin text ü",
        "execute_command": "cat; echo e-err >&2",
        "execute_standard": "expected ü",
    }
    source = make_zip("s.txt", "source")
    task_id = add(
        cluster,
        files={"compile_source": ("s.zip", source)},
        execute_data_name="d.txt",
        execute_data_str="data",
        **texts,
    )
    cluster.wait_done(task_id)
    expected = {
        **texts,
        "compile_output": "c-out\n",
        "compile_error": "c-err\n",
        "execute_output": "stdin text ü",
        "execute_error": "e-err\n",
    }
    for name, text in expected.items():
        reply = download(cluster, task_id, name)
        assert reply.status_code == 200, name
        assert reply.content == text.encode("utf-8"), name
        assert reply.headers["Content-Type"].startswith("text/plain")
        disposition = reply.headers["Content-Disposition"]
        assert disposition == f"attachment; filename={task_id}_{name}.txt"
    reply = download(cluster, task_id, "compile_source")
    assert reply.content == source and reply.headers["Content-Type"] == "application/zip"
    assert (
        reply.headers["Content-Disposition"] == f"attachment; filename={task_id}_compile_source.zip"
    )
    with zipfile.ZipFile(io.BytesIO(download(cluster, task_id, "execute_data").content)) as zf:
        assert zf.read("d.txt") == b"data"


def test_file_downloads_404(cluster: Any) -> None:
    task_id = add(cluster)  # no zips, empty input/standard, empty outputs
    cluster.wait_done(task_id)
    for name in ["compile_source", "execute_data", "execute_input", "execute_standard",
                 "compile_output", "execute_error"]:  # fmt: skip
        assert download(cluster, task_id, name).status_code == 404, name
    assert download(cluster, task_id, "compile_command").status_code == 200
    assert download(cluster, task_id, "secrets").status_code == 404
    assert download(cluster, MISSING_ID, "compile_command").status_code == 404
    assert download(cluster, "not-an-id", "compile_command").status_code == 404


# ----------------------------------------------------------------------------- limits


def test_limits_round_trip(cluster: Any) -> None:
    task_id = add(
        cluster,
        compile_memory_limit=256 * 1024 * 1024,
        execute_memory_limit=128 * 1024 * 1024,
        execute_cpu_limit=5,
        execute_pids_limit=64,
        execute_output_limit=4096,
        execute_command="head -c 100000 /dev/zero",
    )
    task = cluster.wait_done(task_id)
    assert task["compile"]["memory_limit"] == 256 * 1024 * 1024
    assert task["execute"]["memory_limit"] == 128 * 1024 * 1024
    assert (task["execute"]["cpu_limit"], task["execute"]["pids_limit"]) == (5, 64)
    assert task["execute"]["output_limit"] == 4096
    # The cap reached the executor: 100,000 bytes of output exceed it, so the run failed for it.
    assert task["status"] == 4, task
    assert task["result"]["execute"]["reason"] == "output_limit", task
    full = cluster.get(task_id, no_truncate=1)["task"]
    assert len(full["result"]["execute_output"]) == 4096


def test_limits_absent_when_not_given(cluster: Any) -> None:
    task = cluster.get(add(cluster))["task"]
    assert set(task["compile"]) == {"source", "command", "timeout"}
    assert set(task["execute"]) == {
        "input", "data", "execute_command", "execute_timeout", "execute_standard"
    }  # fmt: skip


# ----------------------------------------------------------------------------- add: bad input


@pytest.mark.parametrize(
    "changes",
    [
        {"user": None},
        {"user": -1},
        {"user": INT_MAX + 1},
        {"user": "one"},
        {"compile_timeout": "1.5s"},
        {"execute_timeout": INT_MAX + 1},
        {"compile_command": None},
        {"execute_input": None},
        {"execute_command": None},
        {"execute_standard": None},
        {"compile_source_name": "../../etc/x", "compile_source_str": "x"},
        {"execute_data_name": "/abs", "execute_data_str": "x"},
        {"compile_memory_limit": 0},
        {"execute_cpu_limit": -1},
        {"execute_pids_limit": INT_MAX + 1},
        {"execute_output_limit": "many"},
        {"execute_memory_limit": 2**62 + 1},
    ],
)
def test_add_invalid_input(cluster: Any, changes: dict[str, Any]) -> None:
    assert bare(post(cluster, form(**changes))) == {"result": 4, "id": None}


@pytest.mark.parametrize(
    "entries",
    [
        [("../evil.sh", b"x", None)],
        [("/etc/evil", b"x", None)],
        [("link", b"/etc/passwd", 0o120777)],
    ],
)
def test_add_unsafe_zip(cluster: Any, entries: list[tuple[str, bytes, int | None]]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            archive.writestr(info, content)
    files = {"execute_data": ("bad.zip", buffer.getvalue())}
    assert bare(post(cluster, form(), files)) == {"result": 4, "id": None}
    assert post(cluster, form(), {"compile_source": ("junk.zip", b"not a zip")})["result"] == 4


def test_add_too_large(cluster: Any) -> None:
    limit = 16252928
    answer = post(cluster, form(execute_input="x" * (limit + 1)))
    assert bare(answer) == {"result": 3, "id": None}
    big_zip = b"\0" * (limit + 2 * 1024 * 1024)  # beyond the body limit: refused unread
    answer = post(cluster, form(), {"execute_data": ("big.zip", big_zip)})
    assert bare(answer) == {"result": 3, "id": None}
    # the gateway still serves afterwards
    assert requests.get(url(cluster, "/api/test"), timeout=TIMEOUT).status_code == 200


def test_add_just_under_the_limit(cluster: Any) -> None:
    task_id = add(cluster, execute_standard="s" * (16252928 - 4 - 4))  # commands are "true"
    assert cluster.get(task_id)["result"] == 0


# ----------------------------------------------------------------------------- search


def test_search_filters_order_and_pages(cluster: Any) -> None:
    user = next(USERS)
    ids = [add(cluster, user=user) for _ in range(5)]
    for task_id in ids:
        cluster.wait_done(task_id)
    answer = search(cluster, user=user)
    assert answer["result"] == 0 and answer["pages"] == 1
    assert [t["id"] for t in answer["tasks"]] == ids[::-1]  # new to old by default
    brief = answer["tasks"][0]
    assert set(brief) == {"id", "user", "add_time", "done", "status", "executor", "report_time"}
    assert brief["user"] == user and brief["done"] is True and brief["status"] == 5
    assert brief["executor"]
    oldest_first = search(cluster, user=user, old_to_new="1")
    assert [t["id"] for t in oldest_first["tasks"]] == ids
    assert search(cluster, user=user, old_to_new="")["tasks"][0]["id"] == ids[-1]
    pages = [search(cluster, user=user, limit=2, page=p, old_to_new=1) for p in range(4)]
    assert [p["pages"] for p in pages] == [3, 3, 3, 3]
    assert [[t["id"] for t in p["tasks"]] for p in pages] == [ids[0:2], ids[2:4], ids[4:], []]
    assert [t["id"] for t in search(cluster, id=ids[2])["tasks"]] == [ids[2]]
    assert search(cluster, id=ids[2], user=user + 1) == {"result": 0, "pages": 0, "tasks": []}


def test_search_by_time(cluster: Any) -> None:
    user = next(USERS)
    first = add(cluster, user=user)
    time.sleep(0.05)
    second = add(cluster, user=user)
    t1 = cluster.get(first)["task"]["add_time"]
    t2 = cluster.get(second)["task"]["add_time"]
    assert t1 < t2
    ids = [t["id"] for t in search(cluster, user=user, start_time=t2)["tasks"]]
    assert ids == [second]
    ids = [t["id"] for t in search(cluster, user=user, end_time=t1)["tasks"]]
    assert ids == [first]
    in_zone = parse_time(t2).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"
    assert canonical_time(in_zone) == t2
    ids = [t["id"] for t in search(cluster, user=user, start_time=in_zone)["tasks"]]
    assert ids == [second]
    assert search(cluster, user=user, start_time="2999-01-01T00:00:00")["pages"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"id": "zzz"},
        {"user": -1},
        {"user": "x"},
        {"start_time": "not a time"},
        {"end_time": "2020-01-32T00:00:00"},
        {"limit": -1},
        {"page": INT_MAX + 1},
    ],
)
def test_search_invalid(cluster: Any, params: dict[str, Any]) -> None:
    assert bare(search(cluster, **params)) == {"result": 4, "pages": 0, "tasks": []}


# ----------------------------------------------------------------------------- cancel


def test_cancel(cluster: Any) -> None:
    task_id = add(cluster, execute_command="sleep 60", execute_timeout=0)
    endpoint = url(cluster, "/api/task")
    assert requests.delete(endpoint, params={"id": task_id}, timeout=TIMEOUT).json() == {
        "result": 0
    }
    task = cluster.wait_done(task_id, timeout=20)
    assert task["status"] == 7
    again = requests.delete(endpoint, params={"id": task_id}, timeout=TIMEOUT).json()
    assert bare(again) == {"result": 2}
    missing = requests.delete(endpoint, params={"id": MISSING_ID}, timeout=TIMEOUT).json()
    assert bare(missing) == {"result": 2}
    for bad in [{}, {"id": ""}, {"id": "123"}]:
        assert bare(requests.delete(endpoint, params=bad, timeout=TIMEOUT).json()) == {"result": 4}


# ----------------------------------------------------------------------------- cluster


def test_executors(cluster: Any) -> None:
    answer = requests.get(url(cluster, "/api/executors"), timeout=TIMEOUT).json()
    assert answer["result"] == 0 and len(answer["executors"]) == 1
    executor = answer["executors"][0]
    assert set(executor) == {"id", "hostname", "report_time"}
    assert len(executor["id"]) == 24 and executor["hostname"]
    parse_time(executor["report_time"])


def test_judicators(cluster: Any) -> None:
    answer = requests.get(url(cluster, "/api/judicators"), timeout=TIMEOUT).json()
    assert answer["result"] == 0
    assert [j["address"] for j in answer["judicators"]] == [cluster.judicator_address]
    assert answer["judicators"][0]["name"]


def test_unreachable_judicator_is_result_1(cluster_factory: Any) -> None:
    """A gateway whose only judicator address refuses connections."""
    lonely = cluster_factory()
    port = free_port()
    argv = lonely._argv("gateway", listen=f"127.0.0.1:{port}", judicators="127.0.0.1:1", workers=1)
    node = lonely._spawn("gateway", argv, port)
    lonely.gateways.append(node)
    wait_port(port, node.proc, 30)
    base = lonely.gateway_url
    session = requests.Session()

    def call(method: str, path: str, **kwargs: Any) -> Any:
        return session.request(method, base + path, timeout=TIMEOUT, **kwargs).json()

    assert call("GET", "/api/executors") == {"result": 1, "executors": []}
    assert call("POST", "/api/task", data=form()) == {"result": 1, "id": None}
    assert call("GET", "/api/task/list") == {"result": 1, "pages": 0, "tasks": []}
    assert call("GET", "/api/task", params={"id": MISSING_ID}) == {"result": 1, "task": None}
    assert call("DELETE", "/api/task", params={"id": MISSING_ID}) == {"result": 1}
    reply = session.get(base + "/api/task", params={"id": MISSING_ID, "file": "execute_input"})
    assert reply.status_code == 503
    entry = {"name": "/khala/judicators/static.0", "address": "127.0.0.1:1"}
    assert call("GET", "/api/judicators") == {"result": 0, "judicators": [entry]}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_gateway_stops_cleanly(cluster_factory: Any, sig: int) -> None:
    built = cluster_factory()
    port = free_port()
    # the access log is off by default; --access-log true turns it on (one of the two runs)
    access_log = sig == signal.SIGTERM
    argv = built._argv("gateway", listen=f"127.0.0.1:{port}", judicators="127.0.0.1:1", workers=2,
                       access_log="true" if access_log else None)
    node = built._spawn("gateway", argv, port)
    wait_port(port, node.proc, 30)
    reply = requests.get(f"http://127.0.0.1:{port}/api/test", timeout=TIMEOUT)
    assert reply.text == "Khala gateway server is working."
    node.signal(sig)
    assert node.wait(20) == 0, node.log()
    log = node.log()
    assert ('GET /api/test HTTP/1.1" 200' in log) == access_log, log
    assert "Shutting down" in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_gateway_stops_while_a_worker_boots(
    cluster_factory: Any, sig: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 4 (gunicorn #1910): the master's SIGTERM reaches a worker that has not installed its
    own handlers yet. tests/gateway/boot_delay widens that window to 2 s; the stop must not
    wait for the 30 s graceful timeout."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent / "boot_delay"))
    monkeypatch.setenv("KHALA_TEST_WORKER_BOOT_DELAY", "2")
    monkeypatch.setenv("KHALA_TEST_BOOT_MARKER", str(tmp_path / "booting"))
    built = cluster_factory()
    port = free_port()
    argv = built._argv("gateway", listen=f"127.0.0.1:{port}", judicators="127.0.0.1:1", workers=2)
    node = built._spawn("gateway", argv, port)
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("booting.*"))) < 2:  # both workers are inside the window
        assert node.alive() and time.monotonic() < deadline, node.log()
        time.sleep(0.02)
    started = time.monotonic()
    node.signal(sig)
    assert node.wait(15) == 0, node.log()
    assert time.monotonic() - started < 10, node.log()
    assert "Shutting down" in node.log()


@pytest.mark.parametrize(
    "changes",
    [
        {"execute_memory_limit": 4 * 1024**3 + 1},
        {"compile_memory_limit": 4 * 1024**3 + 1},
        {"execute_cpu_limit": 3601},
        {"execute_pids_limit": 4097},
        {"execute_output_limit": 256 * 1024 * 1024 + 1},
    ],
)
def test_limits_beyond_the_configured_maxima_are_refused(
    cluster: Any, changes: dict[str, Any]
) -> None:
    """The judicator's defaults: 4 GiB memory, 3600 CPU s, 4096 pids, 256 MiB output."""
    assert bare(post(cluster, form(**changes))) == {"result": 4, "id": None}
    limit, value = next(iter(changes.items()))
    assert post(cluster, form(**{limit: value - 1}))["result"] == 0  # the maximum itself is fine


# ----------------------------------------------------------------------------- hostile input


def test_invalid_utf8_form_fields_are_refused(cluster: Any) -> None:
    """Item 14: werkzeug would store U+FFFD (multipart) or a literal "%FF" (urlencoded)."""
    endpoint = url(cluster, "/api/task")
    fields = {k: str(v).encode() for k, v in form().items()}
    fields["compile_command"] = b"echo \xff\xfe"
    multipart = {name: (None, value) for name, value in fields.items()}
    reply = requests.post(endpoint, files=multipart, timeout=TIMEOUT)
    assert reply.status_code == 200 and bare(reply.json()) == {"result": 4, "id": None}
    others = [(k, v) for k, v in fields.items() if k != "compile_command"]
    raw = "&".join(f"{k}={v.decode('latin-1')}" for k, v in others)
    for command in ["echo%20%FF", "echo \xff"]:
        body = (raw + "&compile_command=" + command).encode("latin-1")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        reply = requests.post(endpoint, data=body, headers=headers, timeout=TIMEOUT)
        assert bare(reply.json()) == {"result": 4, "id": None}, command
    # valid UTF-8 (and a literal U+FFFD) still goes through unchanged, both ways
    task_id = add(cluster, compile_command="echo ü \ufffd")
    assert cluster.get(task_id)["task"]["compile"]["command"] == "echo ü \ufffd"
    multipart["compile_command"] = (None, "echo ü".encode())
    answer = requests.post(endpoint, files=multipart, timeout=TIMEOUT).json()
    assert cluster.get(answer["id"])["task"]["compile"]["command"] == "echo ü"


def test_small_input_bugs(cluster: Any) -> None:
    """Item 15: a trailing newline in an id; a year overflow; more than 1,000 parts."""
    task_id = add(cluster)
    assert bare(cluster.get(task_id + "\n")) == {"result": 4, "task": None}
    assert bare(search(cluster, id=task_id + "\n")) == {"result": 4, "pages": 0, "tasks": []}
    reply = requests.delete(url(cluster, "/api/task"), params={"id": task_id + "\n"}, timeout=30)
    assert bare(reply.json()) == {"result": 4}
    for late in ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]:
        assert bare(search(cluster, start_time=late)) == {"result": 4, "pages": 0, "tasks": []}
        assert bare(search(cluster, end_time=late)) == {"result": 4, "pages": 0, "tasks": []}
    parts = [(name, (None, str(value))) for name, value in form().items()]
    parts += [("padding", (None, "x"))] * 1000
    reply = requests.post(url(cluster, "/api/task"), files=parts, timeout=TIMEOUT)
    assert bare(reply.json()) == {"result": 4, "id": None}


def test_search_times_before_year_1000(cluster: Any) -> None:
    """Item 15: canonical times are zero-padded, so early years compare as they should."""
    user = next(USERS)
    task_id = add(cluster, user=user)
    assert [t["id"] for t in search(cluster, user=user, start_time="0999-01-01")["tasks"]] == [
        task_id
    ]
    assert search(cluster, user=user, end_time="0999-01-01")["tasks"] == []
    assert search(cluster, user=user, start_time="0001-01-01", end_time="0999-12-31")["pages"] == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "result"),
    [
        ("GET", "/api/nothing", 404, 2),
        ("GET", "/nothing", 404, 2),
        ("POST", "/api/test", 405, 4),
        ("PUT", "/api/task", 405, 4),
        ("DELETE", "/api/task/list", 405, 4),
    ],
)
def test_unknown_paths_and_methods_answer_json(
    cluster: Any, method: str, path: str, status: int, result: int
) -> None:
    """Item 17: the seed's shape, with the HTTP status kept."""
    reply = requests.request(method, url(cluster, path), timeout=TIMEOUT)
    assert reply.status_code == status
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert body["result"] == result and path in body["error"], body
    if status == 405:
        assert "GET" in reply.headers["Allow"]
