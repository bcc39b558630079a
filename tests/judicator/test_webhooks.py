"""Webhooks through real nodes to a local HTTP server: delivered with a valid signature,
retried with backoff when the server fails, marked failed after the last try, outcomes on the
task; internal URLs refused unless the judicator allows them; the callback URL the same on
every path (part of a keyed task; recorded and checked by the Thrift add)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from khala.model import Code
from khala.rpc import judicator_thrift as T
from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration
SECRET = b"webhook-secret-for-tests-0123456789"


class Hook:
    """A local HTTP server recording POSTs; answers 500 to the first `fail` of each path."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail: dict[str, int] = {}
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook.lock:
                    hook.calls.append({"path": self.path, "body": body, "at": time.monotonic(),
                                       "headers": dict(self.headers)})
                    left = hook.fail.get(self.path, 0)
                    hook.fail[self.path] = left - 1
                self.send_response(500 if left > 0 else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["path"] == path]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hooks")
    (tmp / "hook.secret").write_bytes(SECRET + b"\n")
    hook = Hook()
    c = Cluster(tmp)
    try:
        c.start_judicator(webhook_allow_internal="true", webhook_backoff=0.3,
                          webhook_secret_file=tmp / "hook.secret", webhook_timeout=2)
        c.start_executor(slots=2)
        c.start_gateway()
        yield {"cluster": c, "hook": hook}
    finally:
        c.stop()
        hook.server.shutdown()


def submit(c: Cluster, url: str, command: str = "echo hooked") -> str:
    body = {"compile": {"command": "true"}, "execute": {"command": command, "timeout": 10},
            "callback_url": url}
    reply = requests.post(f"{c.gateway_url}/api/v2/tasks", json=body, timeout=30)
    assert reply.status_code == 201, reply.text
    assert reply.json()["data"]["callback_url"] == url
    return reply.json()["data"]["id"]  # type: ignore[no-any-return]


def settled(c: Cluster, task_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        task = requests.get(f"{c.gateway_url}/api/v2/tasks/{task_id}?wait=20",
                            timeout=40).json()["data"]
        if task["webhook"] and task["webhook"]["state"] in ("delivered", "failed"):
            return task  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, (task, c.logs())
        time.sleep(0.1)


def test_delivered_and_signed(env: dict[str, Any]) -> None:
    c, hook = env["cluster"], env["hook"]
    task_id = submit(c, hook.url + "/ok")
    task = settled(c, task_id)
    assert task["webhook"]["state"] == "delivered" and task["webhook"]["attempts"] == 1, task
    assert task["webhook"]["last_status"] == 204 and task["webhook"]["delivered_at"]
    calls = hook.of("/ok")
    assert len(calls) == 1, calls
    call = calls[0]
    sent = json.loads(call["body"])["data"]
    assert sent["id"] == task_id and sent["status"] == "success" and sent["done"], sent
    stamp = call["headers"]["X-Khala-Timestamp"]
    mac = hmac.new(SECRET, stamp.encode() + b"." + call["body"], hashlib.sha256).hexdigest()
    assert call["headers"]["X-Khala-Signature"] == f"sha256={mac}"
    assert abs(int(stamp) - time.time()) < 60


def test_retried_with_backoff_when_the_server_fails(env: dict[str, Any]) -> None:
    c, hook = env["cluster"], env["hook"]
    hook.fail["/flaky"] = 2
    task = settled(c, submit(c, hook.url + "/flaky"))
    assert task["webhook"]["state"] == "delivered", task
    assert task["webhook"]["attempts"] == 3 and task["webhook"]["last_status"] == 204, task
    calls = hook.of("/flaky")
    assert len(calls) == 3
    gaps = [b["at"] - a["at"] for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= 0.3 * 0.9 and gaps[1] >= 0.6 * 0.9, gaps  # backoff 0.3 s, then doubled
    assert len({call["body"] for call in calls}) == 1  # the same document each time


def test_failed_after_the_last_try(env: dict[str, Any]) -> None:
    c, hook = env["cluster"], env["hook"]
    hook.fail["/down"] = 100
    task = settled(c, submit(c, hook.url + "/down", command="exit 3"))
    assert task["status"] == "run_failed"
    assert task["webhook"]["state"] == "failed" and task["webhook"]["attempts"] == 3, task
    assert task["webhook"]["last_status"] == 500 and task["webhook"]["last_error"] == "HTTP 500"
    time.sleep(1.5)
    assert len(hook.of("/down")) == 3  # no fourth try


def test_internal_urls_refused_by_default(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator()
    c.start_gateway()
    for url in ("http://127.0.0.1:9/hook", "http://localhost/x", "http://169.254.169.254/",
                "http://10.1.2.3/x", "http://[::1]:80/", "ftp://example.org/x",
                "http://user:pw@example.org/"):
        body = {"compile": {"command": "true"}, "execute": {"command": "true"},
                "callback_url": url}
        reply = requests.post(f"{c.gateway_url}/api/v2/tasks", json=body, timeout=30)
        assert reply.status_code == 422, (url, reply.text)
        assert "callback_url" in reply.json()["errors"][0]["detail"], reply.text


def test_an_id_reposted_with_another_callback_url_is_refused(env: dict[str, Any]) -> None:
    """The callback URL is part of a keyed task: the same one → 200, another one (or none
    where it has one) → 409, on every path; the task's webhook stays the first."""
    c, hook = env["cluster"], env["hook"]
    key = f"repost-{time.time_ns()}"
    body = {"compile": {"command": "true"}, "execute": {"command": "sleep 1", "timeout": 10},
            "callback_url": hook.url + "/first"}
    base = f"{c.gateway_url}/api/v2/tasks/{key}"
    assert requests.post(base, json=body, timeout=30).status_code == 201
    assert requests.post(base, json=body, timeout=30).status_code == 200
    for changed in ({**body, "callback_url": hook.url + "/second"},
                    {k: v for k, v in body.items() if k != "callback_url"}):
        reply = requests.post(base, json=changed, timeout=30)
        assert reply.status_code == 409, reply.text
        assert "callback_url" in reply.json()["errors"][0]["detail"], reply.text
        batch = requests.post(f"{c.gateway_url}/api/v2/batches", timeout=30,
                              json={"tasks": [{**changed, "id": key}]}).json()["data"]
        assert [b["status"] for b in batch] == [409], batch
    task = settled(c, key)
    assert task["webhook"]["url"] == hook.url + "/first", task
    assert task["webhook"]["state"] == "delivered", task
    again = requests.post(base, json=body, timeout=30)  # after its end too
    assert again.status_code == 200, again.text
    assert again.json()["data"]["webhook"] == task["webhook"]  # the one record, as it was
    assert len(hook.of("/first")) == 1 and hook.of("/second") == []


def thrift_task(command: str, callback_url: str) -> Any:
    return T.Task(
        user=0,
        compile=T.Compile(source=b"", command=zlib.compress(b"true"), timeout=10),
        execute=T.Execute(input=zlib.compress(b""), data=b"", command=zlib.compress(
            command.encode()), timeout=10, standard=zlib.compress(b"")),
        callback_url=callback_url,
    )


def test_the_thrift_add_records_its_webhook(env: dict[str, Any]) -> None:
    c, hook = env["cluster"], env["hook"]
    added = c.rpc().add(thrift_task("echo thrift", hook.url + "/thrift"))
    assert added.result == Code.OK, added
    task = settled(c, added.id)
    assert task["webhook"]["url"] == hook.url + "/thrift", task
    assert task["webhook"]["state"] == "delivered", task
    calls = hook.of("/thrift")
    assert len(calls) == 1 and json.loads(calls[0]["body"])["data"]["seed_id"] == added.id


def test_the_thrift_add_refuses_internal_urls_as_submit_does(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator()
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/", "ftp://example.org/x"):
        assert c.rpc().add(thrift_task("true", url)).result == Code.INVALID_INPUT, url
