"""Meproc's /proc over the stub judicator (khala/gateway/meproc): the fields it maps, the users
and groups of the operator's table, melang refused, stop that keeps the task, forget, restart.
Through a real cluster: tests/seeds/test_meproc_client.py."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from khala.config import GatewaySettings
from khala.discovery.static import StaticDiscovery
from khala.gateway.app import create_app
from khala.jobs.model import JobRun
from khala.model import Status
from khala.rpc.stub import StubJudicator

SETTINGS = GatewaySettings(run_users="guest=1001:1001, builder=1002",
                           run_groups="guests=1001, wheel=1500")


@pytest.fixture
def judicator() -> StubJudicator:
    return StubJudicator(SETTINGS)


@pytest.fixture
def http(judicator: StubJudicator) -> FlaskClient:
    return create_app(SETTINGS, client=judicator, discovery=StaticDiscovery([])).test_client()


def start(http: FlaskClient, **fields: object) -> dict[str, object]:
    proc = {"name": "task1", "cmd": "sleep 5", "type": "daemon", "replica": 2, **fields}
    reply = http.post("/proc", data=json.dumps(proc))
    assert reply.status_code == reply.get_json()["code"]
    return reply.get_json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("user", "group", "ids"), [
    ("guest", None, (1001, 1001)),        # the user's own group from the table
    ("builder", None, (1002, 65534)),     # a user without one: nogroup
    ("guest", "wheel", (1001, 1500)),
    (None, "guests", (None, 1001)),       # a group alone: the sandbox's user in it
    (None, None, (None, None)),           # neither: the sandbox's user
])
def test_user_and_group_map_to_the_operators_ids(http: FlaskClient, judicator: StubJudicator,
                                                 user: str | None, group: str | None,
                                                 ids: tuple[int | None, int | None]) -> None:
    assert start(http, user=user, group=group) == {"code": 200, "msg": "OK"}
    spec = next(args[0] for name, args in judicator.calls if name == "job_create")
    assert (spec.template.execute.run_uid, spec.template.execute.run_gid) == ids
    shown = http.get("/proc").get_json()["data"]["tasks"]["task1"]
    assert (shown["user"], shown["group"]) == (user, group)


@pytest.mark.parametrize(("fields", "words"), [
    ({"user": "root"}, "user 'root' is not one this cluster runs tasks as"),
    ({"user": "nobody"}, "allows: builder, guest"),
    ({"group": "root"}, "group 'root' is not one"),
    ({"type": "melang", "cmd": "/opt/a.m"}, "type melang (a Melang coroutine script) is not "
                                            "supported"),
    ({"type": "forever"}, "type 'forever' is not one of once, daemon, cron"),
])
def test_refusals_say_why(http: FlaskClient, judicator: StubJudicator,
                          fields: dict[str, object], words: str) -> None:
    answer = start(http, **fields)
    assert answer["code"] == 400 and words in str(answer["msg"]), answer
    assert not judicator.jobs


def test_listing_has_the_seeds_field_names(http: FlaskClient, judicator: StubJudicator) -> None:
    start(http, user="guest", deps=["task0"])
    judicator.jobs["task1"].tasks = [
        JobRun(id="k0", seed_id="a" * 24, alias="task1:0", executor="e1",
               status=int(Status.RUNNING)),
        JobRun(id="k1", seed_id="b" * 24, alias="task1:1", executor=None,
               status=int(Status.PENDING))]
    judicator.stats = [{"name": "e1", "tasks": [{"id": "a" * 24, "status": 3, "pid": 4321}]}]
    data = http.get("/proc").get_json()["data"]
    # a queued run is no running process; the running one has its executor's pid
    assert [{k: r[k] for k in ("command", "pid", "alias")} for r in data["running"]] == [
        {"command": "sleep 5", "pid": 4321, "alias": "task1:0"}]
    task = data["tasks"]["task1"]
    seed = ["name", "cmd", "type", "replica", "user", "deps", "interval", "last_time",
            "run_flag", "start_time", "running", "group"]
    assert list(task)[:len(seed)] == seed and list(task)[len(seed):] == ["cron", "status"]
    assert (task["deps"], task["interval"], task["running"], task["run_flag"]) == (
        ["task0"], 3, 1, True)


def test_stop_keeps_the_task_forget_removes_it_restart_starts_it(
        http: FlaskClient, judicator: StubJudicator) -> None:
    start(http)
    assert http.delete("/proc?name=task1").get_json() == {"code": 200, "msg": "OK"}
    task = http.get("/proc").get_json()["data"]["tasks"]["task1"]
    assert (task["status"], task["run_flag"]) == ("stopped", False)
    assert http.put("/proc?name=task1").get_json() == {"code": 200, "msg": "OK"}
    assert http.get("/proc").get_json()["data"]["tasks"]["task1"]["run_flag"] is True
    assert http.delete("/proc?name=task1&forget=1").get_json() == {"code": 200, "msg": "OK"}
    assert http.get("/proc").get_json()["data"]["tasks"] == {}
    assert http.delete("/proc?name=task1").get_json()["code"] == 404
    assert http.put("/proc").get_json() == {"code": 400, "msg": "the name argument is required"}


def test_a_taken_name_answers_409(http: FlaskClient) -> None:
    start(http)
    assert start(http, type="once")["code"] == 409
