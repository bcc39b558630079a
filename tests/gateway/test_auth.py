"""API keys through real nodes: keys made with `khala keys`, every v2 route with each role, no
key and an unknown key; submit keys confined to their user; the seed API with and without
`seed_requires_keys`; Meproc's /proc and live output (SSE, pow-1) by role; revocation without a
restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration
T = 30
OWN, OTHER = 4101, 4102


def khala_keys(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "khala", "keys", "--file", str(path), *args],
                          capture_output=True, text=True, timeout=60)


def make_key(path: Path, user: int, role: str) -> str:
    done = khala_keys(path, "add", "--user", str(user), "--role", role)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("keys")
    keys_file = tmp / "keys.toml"
    keys = {"admin": make_key(keys_file, 1, "admin"), "submit": make_key(keys_file, OWN, "submit"),
            "read": make_key(keys_file, 2, "read"),
            "other": make_key(keys_file, OTHER, "submit")}
    text = keys_file.read_text()
    assert all(k not in text for k in keys.values()), "a key is stored in clear"
    c = Cluster(tmp)
    try:
        c.start_judicator()
        c.start_executor(slots=2)
        c.start_gateway(keys_file=keys_file, seed_requires_keys="true")
        c.start_gateway(keys_file=keys_file)
        yield {"cluster": c, "keys": keys, "file": keys_file,
               "strict": f"http://127.0.0.1:{c.gateways[0].port}",
               "lax": f"http://127.0.0.1:{c.gateways[1].port}"}
    finally:
        c.stop()


def call(env: dict[str, Any], method: str, path: str, role: str | None = None,
         header: str = "bearer", base: str = "strict", **kw: Any) -> requests.Response:
    headers = {}
    if role is not None:
        key = env["keys"].get(role, role)
        headers = ({"Authorization": f"Bearer {key}"} if header == "bearer"
                   else {"X-Khala-Key": key})
    return requests.request(method, env[base] + path, headers=headers, timeout=T, **kw)


def task(user: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"compile": {"command": "true"},
                            "execute": {"command": "echo hi", "timeout": 10}}
    if user is not None:
        body["user"] = user
    return body


def submitted(env: dict[str, Any], role: str, **kw: Any) -> dict[str, Any]:
    reply = call(env, "POST", "/api/v2/tasks", role, json=task(**kw))
    assert reply.status_code == 201, reply.text
    return reply.json()["data"]  # type: ignore[no-any-return]


def done(env: dict[str, Any], task_id: str) -> dict[str, Any]:
    reply = call(env, "GET", f"/api/v2/tasks/{task_id}?wait=30", "admin")
    assert reply.status_code == 200 and reply.json()["data"]["done"], reply.text
    return reply.json()["data"]  # type: ignore[no-any-return]


def test_missing_and_unknown_keys_get_401_on_every_route(env: dict[str, Any]) -> None:
    t = submitted(env, "admin")["id"]
    routes = [("POST", "/api/v2/tasks"), ("POST", "/api/v2/tasks/k401"),
              ("POST", "/api/v2/batches"), ("GET", "/api/v2/tasks"),
              ("GET", f"/api/v2/tasks/{t}"), ("DELETE", f"/api/v2/tasks/{t}"),
              ("POST", f"/api/v2/tasks/{t}/cancel"), ("PUT", f"/api/v2/tasks/{t}/signals/TERM"),
              ("GET", f"/api/v2/tasks/{t}/outputs/execute/stdout"),
              ("GET", "/api/v2/executors"), ("GET", "/api/v2/executors/x"), ("GET", "/metrics")]
    for method, path in routes:
        for who in (None, "khala_00000000_forged", "garbage"):
            reply = call(env, method, path, who, json=task())
            assert reply.status_code == 401, (method, path, who, reply.text)
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
            if path.startswith("/api/v2"):
                assert reply.json()["errors"][0]["status"] == "401"
    assert call(env, "GET", "/openapi.json").status_code == 200  # the docs stay open
    assert call(env, "GET", "/docs/").status_code == 200


def test_roles_on_every_v2_route(env: dict[str, Any]) -> None:
    own = {r: submitted(env, r)["id"] for r in ("admin", "submit")}
    for t in own.values():
        done(env, t)
    for role in ("admin", "submit", "read"):
        writes = role != "read"
        t = own.get(role, own["admin"])
        expect = {
            ("POST", "/api/v2/tasks", "create"): 201 if writes else 403,
            ("POST", f"/api/v2/tasks/k-{role}-{time.time_ns()}", "create"): 201 if writes
            else 403,
            ("POST", "/api/v2/batches", "batch"): 200 if writes else 403,
            ("GET", "/api/v2/tasks", None): 200,
            ("GET", f"/api/v2/tasks/{t}", None): 200,
            ("GET", f"/api/v2/tasks/{t}/outputs/execute/stdout", None): 200,
            ("GET", f"/api/v2/tasks/{t}/files/compile", None): 200,
            ("GET", f"/api/v2/tasks/{t}/cases", None): 200,
            ("GET", "/api/v2/languages", None): 200,
            ("GET", "/api/v2/limits", None): 200,
            ("PUT", f"/api/v2/tasks/{t}/signals/TERM", None): 409 if writes else 403,
            ("POST", f"/api/v2/tasks/{t}/cancel", None): 409 if writes else 403,
            ("GET", "/api/v2/executors", None): 403 if role == "submit" else 200,
            ("GET", "/api/v2/executors/nobody", None): 403 if role == "submit" else 404,
            ("GET", "/metrics", None): 403 if role == "submit" else 200,
        }
        for (method, path, kind), status in expect.items():
            payload = {"tasks": [task()]} if kind == "batch" else task()
            header = "bearer" if role != "read" else "x-khala-key"
            reply = call(env, method, path, role, header=header, json=payload)
            assert reply.status_code == status, (role, method, path, reply.text)
    # DELETE last: it removes the task.
    reader = call(env, "DELETE", f"/api/v2/tasks/{own['admin']}", "read")
    assert reader.status_code == 403, reader.text
    for role in ("admin", "submit"):
        reply = call(env, "DELETE", f"/api/v2/tasks/{own[role]}", role)
        assert reply.status_code == 204, (role, reply.text)


def test_a_submit_key_acts_only_as_its_user(env: dict[str, Any]) -> None:
    mine = submitted(env, "submit")
    assert mine["user"] == OWN
    theirs = submitted(env, "other")
    assert theirs["user"] == OTHER
    admins = submitted(env, "admin", user=OTHER)
    done(env, theirs["id"])
    # Submitting as someone else: 403, in a batch per item.
    assert call(env, "POST", "/api/v2/tasks", "submit", json=task(OTHER)).status_code == 403
    assert call(env, "POST", "/api/v2/tasks", "submit", json=task(OWN)).status_code == 201
    batch = call(env, "POST", "/api/v2/batches", "submit",
                 json={"tasks": [task(OTHER), task()]}).json()["data"]
    assert [b["status"] for b in batch] == [403, 201], batch
    # Someone else's task does not exist for it.
    for method, path in (("GET", ""), ("GET", "/outputs/execute/stdout"), ("POST", "/cancel"),
                         ("GET", "/files/compile"), ("GET", "/cases"), ("GET", "/events"),
                         ("PUT", "/signals/KILL"), ("DELETE", "")):
        reply = call(env, method, f"/api/v2/tasks/{theirs['id']}{path}", "submit")
        assert reply.status_code == 404, (method, path, reply.text)
    assert call(env, "GET", f"/api/v2/tasks/{admins['id']}", "read").status_code == 200
    # Lists: only its own user, and asking for another is refused.
    listed = call(env, "GET", "/api/v2/tasks?limit=1000", "submit").json()["data"]
    assert listed and {t["user"] for t in listed} == {OWN}, listed
    assert call(env, "GET", f"/api/v2/tasks?user={OTHER}", "submit").status_code == 403
    every = call(env, "GET", "/api/v2/tasks?limit=1000", "read").json()["data"]
    assert {OWN, OTHER} <= {t["user"] for t in every}


def test_the_cli_submits_as_its_keys_user(env: dict[str, Any]) -> None:
    """`khala submit` with a submit key and no --user: the task is the key's user's (the
    CLI sends no user of its own)."""
    import os

    run = subprocess.run(
        [sys.executable, "-m", "khala", "submit", "--execute", "echo mine", "--wait", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "KHALA_URL": env["strict"], "KHALA_KEY": env["keys"]["submit"]})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["user"] == OWN


def seed_form(user: int) -> dict[str, Any]:
    return {"user": user, "compile_command": "true", "compile_timeout": 10,
            "execute_input": "", "execute_command": "echo seed", "execute_timeout": 10,
            "execute_standard": "", "compile_source_name": "", "compile_source_str": "",
            "execute_data_name": "", "execute_data_str": ""}


def test_seed_api_with_required_keys(env: dict[str, Any]) -> None:
    for path, method in (("/api/task", "POST"), ("/api/task/list", "GET"),
                         ("/api/executors", "GET"), ("/api/judicators", "GET")):
        reply = call(env, method, path, data=seed_form(OWN))
        assert reply.status_code == 401 and reply.json()["result"] == 4, (path, reply.text)
    assert call(env, "GET", "/api/test").status_code == 200  # liveness stays open
    assert call(env, "POST", "/api/task", "read", data=seed_form(2)).status_code == 403
    added = call(env, "POST", "/api/task", "submit", data=seed_form(OWN)).json()
    assert added["result"] == 0, added
    refused = call(env, "POST", "/api/task", "submit", data=seed_form(OTHER))
    assert refused.status_code == 403, refused.text
    theirs = call(env, "POST", "/api/task", "admin", data=seed_form(OTHER)).json()["id"]
    seen = call(env, "GET", f"/api/task?id={theirs}", "submit").json()
    assert seen == {"result": 2, "task": None}, seen
    assert call(env, "GET", f"/api/task?id={theirs}", "read").json()["result"] == 0
    assert call(env, "DELETE", f"/api/task?id={theirs}", "submit").json()["result"] == 2
    assert call(env, "GET", f"/api/task?id={added['id']}", "submit").json()["result"] == 0
    listed = call(env, "GET", "/api/task/list", "submit").json()
    assert listed["result"] == 0 and {t["user"] for t in listed["tasks"]} == {OWN}, listed


def test_seed_api_open_without_the_setting(env: dict[str, Any]) -> None:
    added = call(env, "POST", "/api/task", base="lax", data=seed_form(77)).json()
    assert added["result"] == 0, added
    assert call(env, "GET", f"/api/task?id={added['id']}", base="lax").json()["result"] == 0
    assert call(env, "GET", "/api/v2/tasks", base="lax").status_code == 401  # v2 still needs one


def test_revoked_key_stops_at_once(env: dict[str, Any], tmp_path: Path) -> None:
    key = make_key(env["file"], 9, "read")
    assert call(env, "GET", "/api/v2/tasks?limit=1", key).status_code == 200
    listed = khala_keys(env["file"], "list").stdout
    key_id = key.split("_")[1]
    assert key_id in listed and key not in listed
    assert khala_keys(env["file"], "revoke", key_id).returncode == 0
    assert call(env, "GET", "/api/v2/tasks?limit=1", key).status_code == 401
    assert khala_keys(env["file"], "revoke", key_id).returncode == 1


def test_job_routes_need_admin_to_write(env: dict[str, Any]) -> None:
    for role in ("submit", "read"):
        reply = call(env, "POST", "/api/v2/jobs", role, json={"name": "x"})
        assert reply.status_code == 403, (role, reply.text)
        assert call(env, "DELETE", "/api/v2/jobs/x", role).status_code == 403
        assert call(env, "POST", "/api/v2/jobs/x/restart", role).status_code == 403
    assert call(env, "GET", "/api/v2/jobs", "submit").status_code == 403
    assert call(env, "GET", "/api/v2/jobs", "read").status_code == 200
    assert call(env, "GET", "/api/v2/jobs", "admin").status_code == 200
    assert call(env, "GET", "/api/v2/jobs").status_code == 401
    assert call(env, "GET", "/api/v2/jobs/nope", "admin").status_code == 404
    # Meproc's /proc runs processes as host users: admin keys whenever keys are on.
    assert call(env, "GET", "/proc?name=nope", "read").status_code == 403
    assert call(env, "GET", "/proc", base="lax").status_code == 401


def test_meproc_needs_an_admin_key_whenever_keys_are_on(env: dict[str, Any]) -> None:
    """/proc creates, lists and deletes jobs for any user: on the gateway without
    seed_requires_keys (the lax one) too, only admin keys may use it, as API v2's jobs."""
    proc = {"name": "proc-keys", "cmd": "true", "type": "once", "replica": 100}
    for who, status in ((None, 401), ("submit", 403), ("read", 403)):
        for method, path in (("POST", "/proc"), ("GET", "/proc"), ("PUT", "/proc?name=x"),
                             ("DELETE", "/proc?name=x")):
            reply = call(env, method, path, who, base="lax", json=proc)
            assert reply.status_code == status, (who, method, reply.text)
            assert reply.json()["code"] == status, reply.text
    made = call(env, "POST", "/proc", "admin", base="lax", json={**proc, "replica": 1})
    assert made.json() == {"code": 200, "msg": "OK"}, made.text
    assert call(env, "DELETE", "/proc?name=proc-keys", None, base="lax").status_code == 401
    listed = call(env, "GET", "/proc", "admin", base="lax").json()["data"]["tasks"]
    assert "proc-keys" in listed, listed  # the keyless delete did nothing
    assert call(env, "DELETE", "/proc?name=proc-keys", "admin", base="lax").status_code == 200


def sse_events(env: dict[str, Any], task_id: str, role: str | None) -> tuple[int, list[str]]:
    headers = {} if role is None else {"Authorization": f"Bearer {env['keys'][role]}"}
    with requests.get(f"{env['lax']}/api/v2/tasks/{task_id}/events", headers=headers,
                      stream=True, timeout=T) as reply:
        if reply.status_code != 200:
            return reply.status_code, []
        return 200, [line[7:].decode() for line in reply.iter_lines()
                     if line.startswith(b"event: ")]


def pow_session(env: dict[str, Any], role: str, name: str, *params: str,
                then: bytes | None = None) -> dict[str, Any]:
    """One pow-1 session with `role`'s key on the lax gateway: the call, optionally a control
    message right behind it, and the result message."""
    url = env["lax"].replace("http://", "ws://") + "/api/v2/pow"
    headers = {"Authorization": f"Bearer {env['keys'][role]}"}
    with connect(url, subprotocols=["pow-1"], additional_headers=headers) as ws:
        ws.send(json.dumps({"call": name, "params": list(params)}).encode())
        if then is not None:
            ws.send(then)
        while True:
            message = ws.recv(timeout=T)
            if isinstance(message, bytes):
                return json.loads(message)  # type: ignore[no-any-return]


def test_event_streams_follow_the_role_table(env: dict[str, Any]) -> None:
    mine, theirs = submitted(env, "submit")["id"], submitted(env, "other")["id"]
    done(env, mine)
    done(env, theirs)
    for role, task_id in (("submit", mine), ("read", theirs), ("admin", theirs)):
        status, kinds = sse_events(env, task_id, role)
        assert status == 200 and kinds[-1] == "task", (role, status, kinds)
    assert sse_events(env, theirs, "submit")[0] == 404  # not told it exists
    assert sse_events(env, mine, None)[0] == 401


def test_pow_sessions_follow_the_role_table(env: dict[str, Any]) -> None:
    body = json.dumps(task())
    ran = pow_session(env, "submit", "task", body)
    assert ran["status"] == "fulfilled" and ran["value"]["user"] == OWN, ran
    refused = pow_session(env, "submit", "task", json.dumps(task(OTHER)))
    assert refused["status"] == "rejected" and "as user" in refused["reason"], refused
    theirs = submitted(env, "other")["id"]
    hidden = pow_session(env, "submit", "attach", theirs)
    assert hidden == {"status": "rejected", "reason": f"no task {theirs!r}"}, hidden
    assert pow_session(env, "admin", "attach", theirs)["status"] == "fulfilled"
    # a read key follows any task, and only follows
    assert pow_session(env, "read", "attach", theirs)["status"] == "fulfilled"
    no_submit = pow_session(env, "read", "task", body)
    assert no_submit["status"] == "rejected" and "may not submit" in no_submit["reason"]
    slow = call(env, "POST", "/api/v2/tasks", "admin", json={
        "compile": {"command": "true"},
        "execute": {"command": "echo started; sleep 2; echo ended", "timeout": 20}})
    slow_id = slow.json()["data"]["id"]
    no_cancel = pow_session(env, "read", "attach", slow_id, then=b'{"signal": "cancel"}')
    assert no_cancel["status"] == "rejected" and "may not cancel" in no_cancel["reason"]
    assert done(env, slow_id)["status"] == "success"  # not cancelled
    url = env["lax"].replace("http://", "ws://") + "/api/v2/pow?cancel_on_disconnect=1"
    key = {"Authorization": f"Bearer {env['keys']['read']}"}
    with pytest.raises(InvalidStatus) as refused_status, connect(
            url, subprotocols=["pow-1"], additional_headers=key):
        pass
    assert refused_status.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as keyless, connect(url, subprotocols=["pow-1"]):
        pass
    assert keyless.value.response.status_code == 401
