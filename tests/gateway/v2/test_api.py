"""API v2 through real processes: gateway (gunicorn) → judicator → executor (tests/fixtures).

Every route and its error cases; idempotent ids under 50 concurrent submissions; raw outputs.
"""

from __future__ import annotations

import base64
import gzip
import io
import itertools
import json
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import brotli
import requests
from openapi_spec_validator import validate

from tests.fixtures.waiting import named_process, until

TIMEOUT = 30
USERS = itertools.count(2_000_000 + int(time.time()) % 1_000_000)
RUN = f"r{int(time.time() * 1000) % 10**9}"
IDS = itertools.count()


def new_id(name: str) -> str:
    return f"{RUN}.{name}-{next(IDS)}"


def url(cluster: Any, path: str) -> str:
    return f"{cluster.gateway_url}{path}"


def body(**changes: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "user": next(USERS),
        "compile": {"command": "true", "timeout": 10},
        "execute": {"command": "cat", "input": "hello", "timeout": 10},
    }
    for key, value in changes.items():
        if key in ("compile", "execute"):
            task[key] = {**task[key], **value}
        else:
            task[key] = value
    return task


def post(cluster: Any, path: str, payload: Any) -> requests.Response:
    return requests.post(url(cluster, path), json=payload, timeout=TIMEOUT)


def get(cluster: Any, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(url(cluster, path), timeout=TIMEOUT + 70, **kwargs)


def assert_error(reply: requests.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["Content-Type"].startswith("application/json"), reply.headers
    errors = reply.json()["errors"]
    assert errors and errors[0]["status"] == str(status), errors
    assert errors[0]["title"] and errors[0]["detail"]
    return errors[0]  # type: ignore[no-any-return]


def wait_done(cluster: Any, task_id: str, seconds: float = 30) -> dict[str, Any]:
    reply = get(cluster, f"/api/v2/tasks/{task_id}", params={"wait": seconds})
    assert reply.status_code == 200, reply.text
    task = reply.json()["data"]
    assert task["done"], task
    return task  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- spec and docs


def test_openapi_document_is_valid_and_lists_every_route(cluster: Any) -> None:
    reply = get(cluster, "/openapi.json")
    assert reply.status_code == 200
    document = reply.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    for path in ("/api/v2/tasks", "/api/v2/tasks/{id}", "/api/v2/batches",
                 "/api/v2/tasks/{id}/outputs/{step}/{stream}",
                 "/api/v2/tasks/{id}/signals/{signal}", "/api/v2/tasks/{id}/cancel",
                 "/api/task", "/api/task/list"):
        assert path in document["paths"], path


def test_swagger_ui_is_served_from_the_package(cluster: Any) -> None:
    page = get(cluster, "/docs/")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN
    bundle = get(cluster, "/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert get(cluster, "/docs/swagger-ui.css").status_code == 200


# ----------------------------------------------------------------------------- submission


def test_submit_runs_the_task_and_reports_results(cluster: Any) -> None:
    source = "#!/bin/sh\necho compiled > built.txt\n"
    reply = post(cluster, "/api/v2/tasks", body(
        compile={"command": "sh build.sh", "files": [{"path": "build.sh", "content": source}]},
        execute={"command": "cat built.txt; od -An -tx1 data/d.bin; exit 3",
                 "files": [{"path": "d.bin", "content": base64.b64encode(b"\x00\xff").decode(),
                            "encoding": "base64"}]},
    ))
    assert reply.status_code == 201, reply.text
    task = reply.json()["data"]
    assert reply.headers["Location"] == f"/api/v2/tasks/{task['id']}"
    assert task["id"] == task["seed_id"] and len(task["id"]) == 24
    assert task["compile"]["has_source"] and task["execute"]["has_data"]
    done = wait_done(cluster, task["id"])
    assert done["status"] == "run_failed" and done["status_code"] == 4
    step = done["result"]["execute"]
    assert step["status"] == {"exit_code": 3, "signum": None, "core_dump": False}
    assert step["reason"] == "nonzero_exit" and step["errors"] == []
    assert step["rusage"]["maxrss"] > 0 and step["wall_time"] > 0
    out = get(cluster, f"/api/v2/tasks/{task['id']}/outputs/execute/stdout")
    assert out.content == b"compiled\n 00 ff\n"


def test_invalid_tasks_answer_422_and_malformed_json_400(cluster: Any) -> None:
    assert_error(post(cluster, "/api/v2/tasks", {"user": 1}), 422)
    assert_error(post(cluster, "/api/v2/tasks", body(compile={"timeout": -1})), 422)
    assert_error(post(cluster, "/api/v2/tasks", body(extra=1)), 422)
    bad_b64 = body(compile={"files": [{"path": "a", "content": "@@", "encoding": "base64"}]})
    assert_error(post(cluster, "/api/v2/tasks", bad_b64), 422)
    unsafe = body(compile={"files": [{"path": "../evil", "content": "x"}]})
    assert_error(post(cluster, "/api/v2/tasks", unsafe), 422)
    raw = requests.post(url(cluster, "/api/v2/tasks"), data=b"{nope", timeout=TIMEOUT,
                        headers={"Content-Type": "application/json"})
    assert_error(raw, 400)
    assert_error(requests.post(url(cluster, "/api/v2/tasks"), timeout=TIMEOUT), 400)


def test_fields_are_strictly_typed(cluster: Any) -> None:
    """No conversions between JSON types: true is not 1, "10" is not a number, 1.5 not an
    integer (seconds may have fractions: a byte count may not)."""
    for changes in ({"user": True}, {"user": 1.0}, {"user": "1"}, {"priority": False},
                    {"execute": {"memory_limit": 1.5}}, {"execute": {"timeout": "10"}},
                    {"execute": {"stop_on_failure": 1}}, {"compile": {"command": 5}},
                    {"execute": {"compare": {"mode": "float", "abs_tol": "0.1"}}},
                    {"execute": {"cases": [{"weight": True}]}}):
        assert_error(post(cluster, "/api/v2/tasks", body(**changes)), 422)
    numbers = body(execute={"compare": {"mode": "float", "abs_tol": 0, "rel_tol": 1e-3}})
    assert post(cluster, "/api/v2/tasks", numbers).status_code == 201  # an integer is a number
    batch = post(cluster, "/api/v2/batches", {"tasks": [body(user=True), body()]})
    assert [b["status"] for b in batch.json()["data"]] == [422, 201], batch.text
    job = {"name": "strict-types", "type": "once", "task": body(), "replica": True}
    assert_error(post(cluster, "/api/v2/jobs", job), 422)


def test_oversize_body_answers_413_as_json(cluster: Any) -> None:
    huge = b"x" * (16252928 * 4 // 3 + 2 * 1024 * 1024)
    reply = requests.post(url(cluster, "/api/v2/tasks"), data=huge, timeout=TIMEOUT,
                          headers={"Content-Type": "application/json"})
    assert_error(reply, 413)


def test_unknown_routes_and_methods_answer_json(cluster: Any) -> None:
    assert_error(get(cluster, "/api/v2/nothing"), 404)
    assert_error(get(cluster, "/api/v2"), 404)
    reply = requests.patch(url(cluster, "/api/v2/tasks"), timeout=TIMEOUT)
    assert_error(reply, 405)
    assert "GET" in reply.headers.get("Allow", "")
    # the seed API keeps its own answers
    assert requests.get(url(cluster, "/api/test"), timeout=TIMEOUT).text.startswith("Khala")


def test_client_ids_are_idempotent(cluster: Any) -> None:
    task_id = new_id("same")
    first = post(cluster, f"/api/v2/tasks/{task_id}", body(user=7))
    assert first.status_code == 201, first.text
    assert first.json()["data"]["id"] == task_id
    assert first.headers["Location"] == f"/api/v2/tasks/{task_id}"
    again = post(cluster, f"/api/v2/tasks/{task_id}", body(user=7))
    assert again.status_code == 200, again.text
    assert again.json()["data"]["seed_id"] == first.json()["data"]["seed_id"]
    assert_error(post(cluster, f"/api/v2/tasks/{task_id}", body(user=8)), 409)
    assert_error(post(cluster, "/api/v2/tasks/bad%20id", body()), 422)
    assert_error(post(cluster, f"/api/v2/tasks/{'x' * 65}", body()), 422)
    seed = first.json()["data"]["seed_id"]
    assert get(cluster, f"/api/v2/tasks/{seed}").json()["data"]["id"] == task_id


def test_fifty_concurrent_submissions_of_one_id_make_one_task(cluster: Any) -> None:
    task_id = new_id("race")
    payload = body(user=31337)

    def submit(_: int) -> requests.Response:
        return post(cluster, f"/api/v2/tasks/{task_id}", payload)

    with ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(submit, range(50)))
    codes = sorted(r.status_code for r in replies)
    assert codes == [200] * 49 + [201], codes
    assert len({r.json()["data"]["seed_id"] for r in replies}) == 1
    listed = get(cluster, "/api/v2/tasks", params={"user": 31337, "limit": 1000}).json()
    assert [t["id"] for t in listed["data"]].count(task_id) == 1


# ----------------------------------------------------------------------------- reading


def test_get_unknown_answers_404(cluster: Any) -> None:
    assert_error(get(cluster, "/api/v2/tasks/no-such-task"), 404)
    assert_error(get(cluster, "/api/v2/tasks/0123456789abcdef01234567"), 404)
    assert_error(get(cluster, "/api/v2/tasks/x", params={"wait": 100000}), 422)


def test_wait_holds_until_the_task_is_done(cluster: Any) -> None:
    reply = post(cluster, "/api/v2/tasks", body(execute={"command": "sleep 1; echo ok"}))
    task_id = reply.json()["data"]["id"]
    started = time.monotonic()
    early = get(cluster, f"/api/v2/tasks/{task_id}", params={"wait": 0.3}).json()["data"]
    assert not early["done"] and time.monotonic() - started >= 0.3
    done = wait_done(cluster, task_id, 20)
    took = time.monotonic() - started
    assert done["status"] == "success" and took < 10, took


def test_list_filters_orders_and_pages_while_tasks_are_added(cluster: Any) -> None:
    user = next(USERS)
    ids = [post(cluster, "/api/v2/tasks", body(user=user)).json()["data"]["id"]
           for _ in range(5)]
    first = get(cluster, "/api/v2/tasks", params={"user": user, "limit": 2}).json()
    assert [t["id"] for t in first["data"]] == ids[::-1][:2]
    added = post(cluster, "/api/v2/tasks", body(user=user)).json()["data"]["id"]
    seen = [t["id"] for t in first["data"]]
    link = first["links"]["next"]
    for _ in range(10):
        if not link:
            break
        page = get(cluster, link).json()
        seen += [t["id"] for t in page["data"]]
        link = page["links"]["next"]
    assert seen == ids[::-1] and added not in seen
    oldest = get(cluster, "/api/v2/tasks", params={"user": user, "order": "oldest"}).json()
    assert [t["id"] for t in oldest["data"]] == ids + [added]
    for task_id in ids + [added]:
        wait_done(cluster, task_id)
    ok = get(cluster, "/api/v2/tasks", params={"user": user, "status": "success"}).json()
    assert len(ok["data"]) == 6
    none = get(cluster, "/api/v2/tasks", params={"user": user, "status": "pending,running"})
    assert none.json()["data"] == []
    since = get(cluster, "/api/v2/tasks", params={"user": user, "since": "2999-01-01"}).json()
    assert since["data"] == []
    assert_error(get(cluster, "/api/v2/tasks", params={"status": "bogus"}), 422)
    assert_error(get(cluster, "/api/v2/tasks", params={"cursor": "!!"}), 400)
    assert_error(get(cluster, "/api/v2/tasks", params={"since": "yesterday"}), 400)
    assert_error(get(cluster, "/api/v2/tasks", params={"limit": 0}), 422)


# ----------------------------------------------------------------------------- batches


def test_batch_gives_each_item_its_outcome(cluster: Any) -> None:
    same = new_id("batch")
    items = [
        {**body(user=5), "id": same},
        {**body(user=5), "id": same},
        {**body(user=6), "id": same},
        {"user": 1},
        body(),
    ]
    reply = post(cluster, "/api/v2/batches", {"tasks": items})
    assert reply.status_code == 200, reply.text
    outcomes = reply.json()["data"]
    assert [o["status"] for o in outcomes] == [201, 200, 409, 422, 201]
    assert outcomes[0]["id"] == same and outcomes[0]["data"]["id"] == same
    assert outcomes[3]["errors"][0]["status"] == "422"
    many = post(cluster, "/api/v2/batches", {"tasks": [body()] * 1001})
    assert_error(many, 422)
    assert_error(post(cluster, "/api/v2/batches", {"tasks": []}), 422)


# ----------------------------------------------------------------------------- outputs


def _all_bytes_task(cluster: Any) -> str:
    script = "printf \"$(printf '\\\\%03o' $(seq 0 255))\"; printf '\\377\\376\\300\\200'"
    reply = post(cluster, "/api/v2/tasks", body(execute={"command": script}))
    task_id = reply.json()["data"]["id"]
    assert wait_done(cluster, task_id)["status"] == "success"
    return str(task_id)


EXPECTED = bytes(range(256)) + b"\xff\xfe\xc0\x80"


def test_outputs_are_byte_exact_plain_gzip_and_br(cluster: Any) -> None:
    task_id = _all_bytes_task(cluster)
    path = f"/api/v2/tasks/{task_id}/outputs/execute/stdout"
    plain = get(cluster, path, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert plain.content == EXPECTED
    for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        raw = requests.get(url(cluster, path), headers={"Accept-Encoding": encoding},
                           stream=True, timeout=TIMEOUT)
        assert raw.status_code == 200 and raw.headers["Content-Encoding"] == encoding
        assert decode(raw.raw.read()) == EXPECTED


def test_outputs_route_compresses_on_request(cluster: Any) -> None:
    reply = post(cluster, "/api/v2/tasks", body(execute={"command": "seq 1 2000"}))
    task_id = reply.json()["data"]["id"]
    wait_done(cluster, task_id)
    path = url(cluster, f"/api/v2/tasks/{task_id}/outputs/execute/stdout")
    expected = "".join(f"{i}\n" for i in range(1, 2001)).encode()
    for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        raw = requests.get(path, headers={"Accept-Encoding": encoding}, stream=True,
                           timeout=TIMEOUT)
        assert raw.headers["Content-Encoding"] == encoding
        assert decode(raw.raw.read()) == expected
    plain = requests.get(path, headers={"Accept-Encoding": "identity"}, timeout=TIMEOUT)
    assert plain.content == expected and "Content-Encoding" not in plain.headers
    assert get(cluster, f"/api/v2/tasks/{task_id}/outputs/compile/stderr").content == b""
    assert_error(get(cluster, f"/api/v2/tasks/{task_id}/outputs/run/stdout"), 404)
    assert_error(get(cluster, "/api/v2/tasks/nope/outputs/execute/stdout"), 404)


# ----------------------------------------------------------------------------- control


def test_cancel_and_delete(cluster: Any) -> None:
    reply = post(cluster, "/api/v2/tasks", body(execute={"command": "sleep 30"}))
    task_id = reply.json()["data"]["id"]
    assert_error(requests.delete(url(cluster, f"/api/v2/tasks/{task_id}"), timeout=TIMEOUT), 409)
    cancelled = post(cluster, f"/api/v2/tasks/{task_id}/cancel", None)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"
    assert_error(post(cluster, f"/api/v2/tasks/{task_id}/cancel", None), 409)
    assert_error(requests.put(url(cluster, f"/api/v2/tasks/{task_id}/signals/TERM"),
                              timeout=TIMEOUT), 409)
    gone = requests.delete(url(cluster, f"/api/v2/tasks/{task_id}"), timeout=TIMEOUT)
    assert gone.status_code == 204 and gone.content == b""
    assert_error(get(cluster, f"/api/v2/tasks/{task_id}"), 404)
    assert_error(requests.delete(url(cluster, f"/api/v2/tasks/{task_id}"), timeout=TIMEOUT), 404)
    assert_error(post(cluster, "/api/v2/tasks/nope/cancel", None), 404)


def test_signal_reaches_the_running_process(cluster: Any) -> None:
    armed = f"khala-armed-{uuid.uuid4().hex[:12]}"  # a process named so: the trap is set
    script = f"trap 'echo got-usr1; exit 7' USR1; exec -a {armed} sleep 60 & wait"
    reply = post(cluster, "/api/v2/tasks", body(execute={"command": script, "timeout": 60}))
    task_id = reply.json()["data"]["id"]
    until(lambda: get(cluster, f"/api/v2/tasks/{task_id}").json()["data"]["status"] == "running",
          20, "the task runs")
    until(lambda: named_process(armed), 20, "bash has set its trap")
    sent = requests.put(url(cluster, f"/api/v2/tasks/{task_id}/signals/USR1"), timeout=TIMEOUT)
    assert sent.status_code == 202, sent.text
    done = wait_done(cluster, task_id, 20)
    assert done["result"]["execute"]["status"]["exit_code"] == 7, done
    out = get(cluster, f"/api/v2/tasks/{task_id}/outputs/execute/stdout").content
    assert b"got-usr1" in out
    assert_error(requests.put(url(cluster, "/api/v2/tasks/nope/signals/TERM"),
                              timeout=TIMEOUT), 404)
    assert_error(requests.put(url(cluster, f"/api/v2/tasks/{task_id}/signals/NOPE"),
                              timeout=TIMEOUT), 422)
    # digits that are no signal's number, or not ASCII digits: refused as unknown, not a 500
    for signal in ("²", "٣", "99999999999999999999999", "0", "65", "SIG", "TERM!"):
        assert_error(requests.put(url(cluster, f"/api/v2/tasks/{task_id}/signals/{signal}"),
                                  timeout=TIMEOUT), 422)


def test_zip_sources_are_accepted(cluster: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "zipped\n")
    task = body(execute={"command": "cat hello.txt"},
                compile={"zip": base64.b64encode(buffer.getvalue()).decode()})
    task_id = post(cluster, "/api/v2/tasks", task).json()["data"]["id"]
    wait_done(cluster, task_id)
    assert get(cluster, f"/api/v2/tasks/{task_id}/outputs/execute/stdout").content == b"zipped\n"


# ----------------------------------------------------------------------------- CLI


def khala_cli(cluster: Any, *argv: str, cwd: str | None = None) -> Any:
    import os
    import subprocess
    import sys

    env = {**os.environ, "KHALA_URL": cluster.gateway_url}
    return subprocess.run([sys.executable, "-m", "khala", *argv], capture_output=True,
                          env=env, cwd=cwd, timeout=120, check=False)


def test_cli_submits_waits_prints_outputs_and_exits_by_status(cluster: Any, tmp_path: Any) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("from a file\n")
    ok = khala_cli(cluster, "submit", str(tmp_path / "src"), "--execute", "cat a.txt", "--wait")
    assert ok.returncode == 0, ok.stderr
    assert b"from a file\n" in ok.stdout and b"success" in ok.stdout
    failed = khala_cli(cluster, "submit", "--execute", "exit 4", "--wait", "--json")
    assert failed.returncode == 1, failed.stderr
    task = json.loads(failed.stdout)
    assert task["status"] == "run_failed"
    got = khala_cli(cluster, "get", task["id"], "--json")
    assert got.returncode == 1 and json.loads(got.stdout)["id"] == task["id"]
    listed = khala_cli(cluster, "tasks", "--limit", "5")
    assert listed.returncode == 0 and task["id"].encode() in listed.stdout
    assert khala_cli(cluster, "cancel", task["id"]).returncode == 3  # done: 409
    assert khala_cli(cluster, "signal", "no-such", "TERM").returncode == 3
    unreachable = khala_cli(cluster, "get", "x", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 4
