"""Jobs on a real cluster (judicator with the test-only fast cron clock, one executor with
3 slots, one gateway): once/replicas, dependencies, daemons, restart, delete, cron, and the
Meproc routes."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.fixtures.joblog import skipped_ticks
from tests.fixtures.waiting import named_process, until

pytestmark = pytest.mark.integration  # starts its own cluster

GRACE = 2.0


@pytest.fixture(scope="module")
def jc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("jobs"))
    try:
        c.start_judicator(cron_unit=1, job_pass=0.2, job_stop_grace=GRACE)
        c.start_executor(slots=4)
        c.start_gateway()
        yield c
    finally:
        c.stop()




def job(c: Cluster, name: str) -> dict[str, Any] | None:
    r = requests.get(f"{c.gateway_url}/api/v2/jobs/{name}", timeout=10)
    if r.status_code == 404:
        assert r.json()["errors"][0]["status"] == "404"
        return None
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def create(c: Cluster, name: str, kind: str, command: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "type": kind,
            "task": {"compile": {"command": "true"}, "execute": {"command": command}}, **fields}
    r = requests.post(f"{c.gateway_url}/api/v2/jobs", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def runs(c: Cluster, name: str) -> list[dict[str, Any]]:
    """Every task of the job (its runs are ordinary tasks, keyed <name>.…)."""
    r = requests.get(f"{c.gateway_url}/api/v2/tasks", params={"limit": 1000}, timeout=10)
    return [t for t in r.json()["data"] if t["id"].startswith(name + ".")]


def test_once_with_three_replicas_runs_three_tasks(jc: Cluster) -> None:
    made = create(jc, "three", "once", "echo hi", replica=3)
    assert made["status"] in ("waiting", "running", "starting")
    until(lambda: job(jc, "three")["status"] == "succeeded", 30, "succeeded")  # type: ignore[index]
    tasks = runs(jc, "three")
    assert len(tasks) == 3 and all(t["status"] == "success" for t in tasks)
    one = requests.get(f"{jc.gateway_url}/api/task", params={"id": tasks[0]["seed_id"]},
                       timeout=10).json()
    assert one["result"] == 0 and one["task"]["status"] == 5  # visible in the seed API too
    listed = requests.get(f"{jc.gateway_url}/api/v2/jobs", timeout=10).json()["data"]
    mine = next(j for j in listed if j["name"] == "three")
    assert mine["last_start"] and mine["last_end"] and mine["tasks"] == []
    again = requests.post(f"{jc.gateway_url}/api/v2/jobs", timeout=10, json={
        "name": "three", "type": "once",
        "task": {"compile": {"command": "true"}, "execute": {"command": "true"}}})
    assert again.status_code == 409 and "errors" in again.json()


def test_bad_jobs_are_refused(jc: Cluster) -> None:
    url = f"{jc.gateway_url}/api/v2/jobs"
    task = {"compile": {"command": "true"}, "execute": {"command": "true"}}
    for body in ({"name": "x", "type": "cron", "cron": "61 * * * *", "task": task},
                 {"name": "x", "type": "weekly", "task": task},
                 {"name": "x y", "type": "once", "task": task},
                 {"name": "x", "type": "once", "replica": 0, "task": task},
                 {"name": "x", "type": "once", "deps": ["x"], "task": task}):
        r = requests.post(url, json=body, timeout=10)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["detail"]
    assert requests.get(f"{url}/nope", timeout=10).status_code == 404


def test_deps_hold_until_success_and_block_on_failure(jc: Cluster) -> None:
    create(jc, "first", "once", "sleep 1.5")
    create(jc, "second", "once", "true", deps=["first"])
    assert job(jc, "second")["status"] == "waiting"  # type: ignore[index]
    done = until(lambda: (lambda j: j if j["status"] == "succeeded" else None)(
        job(jc, "second")), 30, "second succeeded")
    first_end = job(jc, "first")["last_end"]  # type: ignore[index]
    assert done["last_start"] > first_end  # started only after its dependency ended
    create(jc, "broken", "once", "exit 3")
    create(jc, "after-broken", "once", "true", deps=["broken"])
    until(lambda: job(jc, "after-broken")["status"] == "blocked", 30, "blocked")  # type: ignore[index]
    time.sleep(1)
    assert runs(jc, "after-broken") == []
    assert "broken" in job(jc, "after-broken")["blocked"]  # type: ignore[index]


def test_daemon_restarted_after_interval_when_killed_or_exiting(jc: Cluster) -> None:
    create(jc, "keeper", "daemon", "sleep 60", interval=1)
    task = until(lambda: (lambda j: j["tasks"] and j["tasks"][0]["status"] == "running"
                          and j["tasks"][0])(job(jc, "keeper")), 30, "daemon running")
    assert task["alias"] == "keeper:0" and task["executor"]
    r = requests.put(f"{jc.gateway_url}/api/v2/tasks/{task['id']}/signals/KILL", timeout=10)
    assert r.status_code == 202
    ended = until(lambda: (lambda t: t if t["done"] else None)(requests.get(
        f"{jc.gateway_url}/api/v2/tasks/{task['id']}", timeout=10).json()["data"]), 30, "killed")
    nxt = until(lambda: (lambda j: j["tasks"] and j["tasks"][0]["id"] != task["id"]
                         and j["tasks"][0])(job(jc, "keeper")), 30, "restarted")
    started = requests.get(f"{jc.gateway_url}/api/v2/tasks/{nxt['id']}",
                           timeout=10).json()["data"]["add_time"]
    assert started >= _plus(ended["report_time"], 1.0)  # not before the interval
    create(jc, "blinker", "daemon", "true", interval=1)
    until(lambda: len(runs(jc, "blinker")) >= 3, 30, "an exiting daemon restarted twice")
    for name in ("keeper", "blinker"):
        assert requests.delete(f"{jc.gateway_url}/api/v2/jobs/{name}", timeout=10).ok


def _plus(text: str, seconds: float) -> str:
    import datetime as dt

    from khala.model import format_time, parse_time

    return format_time(parse_time(text) + dt.timedelta(seconds=seconds))


def test_restart_terms_then_kills_and_starts_again(jc: Cluster) -> None:
    # each marks, with a process of that name, the point where its trap is set
    armed = {name: f"khala-armed-{uuid.uuid4().hex[:12]}" for name in ("polite", "stubborn")}
    create(jc, "polite", "daemon", f"trap 'exit 0' TERM; exec -a {armed['polite']} sleep 60 & "
           "wait", interval=1)
    create(jc, "stubborn", "daemon", f"trap '' TERM; exec -a {armed['stubborn']} sleep 60",
           interval=1)
    olds = {}
    for name in ("polite", "stubborn"):
        olds[name] = until(lambda n=name: (lambda j: j["tasks"] and j["tasks"][0]["status"]
                                           == "running" and j["tasks"][0])(job(jc, n)),
                           30, f"{name} running")
    for name, mark in armed.items():
        until(lambda m=mark: named_process(m), 20, f"{name} has set its trap")
    began = time.monotonic()
    for name in olds:
        r = requests.post(f"{jc.gateway_url}/api/v2/jobs/{name}/restart", timeout=10)
        assert r.status_code == 200 and r.json()["data"]["status"] == "stopping", r.text
    for name, old in olds.items():
        new = until(lambda n=name, o=old: (lambda j: j["tasks"] and j["tasks"][0]["id"]
                                           != o["id"] and j)(job(jc, n)), 30, f"{name} again")
        assert new["generation"] == 1
        took = time.monotonic() - began
        final = requests.get(f"{jc.gateway_url}/api/v2/tasks/{old['id']}",
                             timeout=10).json()["data"]
        assert final["done"]
        if name == "polite":
            assert final["status"] == "success"  # exited on SIGTERM
        else:
            assert final["status"] == "cancelled" and took >= GRACE  # killed after the grace
    for name in olds:
        r = requests.delete(f"{jc.gateway_url}/api/v2/jobs/{name}", timeout=10)
        assert r.status_code == 202
    until(lambda: job(jc, "stubborn") is None and job(jc, "polite") is None, 30, "deleted")
    assert all(t["done"] for name in olds for t in runs(jc, name))
    time.sleep(1.5)
    counts = {name: len(runs(jc, name)) for name in olds}
    time.sleep(1.5)
    assert counts == {name: len(runs(jc, name)) for name in olds}  # stopped for good


def test_stop_keeps_the_job_until_a_restart(jc: Cluster) -> None:
    create(jc, "pausing", "daemon", "sleep 60", interval=0)
    first = until(lambda: (lambda j: j["tasks"] and j["tasks"][0]["status"] == "running"
                           and j["tasks"][0])(job(jc, "pausing")), 30, "running")
    r = requests.post(f"{jc.gateway_url}/api/v2/jobs/pausing/stop", timeout=10)
    assert r.status_code == 200 and r.json()["data"]["status"] == "stopped", r.text
    until(lambda: not job(jc, "pausing")["tasks"], 30, "its run ended")  # type: ignore[index]
    ended = requests.get(f"{jc.gateway_url}/api/v2/tasks/{first['id']}",
                         timeout=10).json()["data"]
    assert ended["done"] and job(jc, "pausing")["status"] == "stopped"  # type: ignore[index]
    time.sleep(1.0)  # five scheduler passes: a daemon with interval 0 would have restarted
    assert len(runs(jc, "pausing")) == 1 and job(jc, "pausing")["status"] == "stopped"  # type: ignore[index]
    r = requests.post(f"{jc.gateway_url}/api/v2/jobs/pausing/restart", timeout=10)
    assert r.status_code == 200
    again = until(lambda: (lambda j: j["tasks"] and j["tasks"][0]["status"] == "running"
                           and j)(job(jc, "pausing")), 30, "running again")
    assert again["status"] == "running" and len(runs(jc, "pausing")) == 2
    requests.delete(f"{jc.gateway_url}/api/v2/jobs/pausing", timeout=10)


def test_cron_fires_once_per_tick(jc: Cluster) -> None:
    create(jc, "ticker", "cron", "echo tick", cron="* * * * *")
    time.sleep(5.5)
    requests.delete(f"{jc.gateway_url}/api/v2/jobs/ticker", timeout=10)
    ticks = [t["id"].split(".")[4] for t in runs(jc, "ticker")]
    assert len(set(ticks)) == len(ticks)  # one task per tick
    numbers = sorted(int(t[1:], 36) for t in ticks)
    # Every second: each tick fired, or was skipped as missed because a pass came more than a
    # tick late (a loaded host), which the leader logs; never both, and no tick left out.
    skipped = skipped_ticks(jc.judicators[0].log(), "ticker")
    assert not skipped & set(numbers), (numbers, skipped)
    covered = set(numbers) | {t for t in skipped if numbers[0] <= t <= numbers[-1]}
    assert sorted(covered) == list(range(numbers[0], numbers[-1] + 1)), (numbers, skipped)
    assert 4 <= len(covered) + len(skipped - covered) <= 7, (numbers, skipped)
    create(jc, "every2", "cron", "true", cron="*/2 * * * *")
    time.sleep(5)
    requests.delete(f"{jc.gateway_url}/api/v2/jobs/every2", timeout=10)
    numbers = [int(t["id"].split(".")[4][1:], 36) for t in runs(jc, "every2")]
    assert numbers and all(n % 2 == 0 for n in numbers) and len(numbers) <= 3


def test_ticks_a_late_pass_missed_are_logged_and_skipped(jc: Cluster) -> None:
    """A leader stopped for more than two ticks: on waking, the earliest missed tick fires,
    late, the others are skipped and logged as such; no tick fires twice or goes unaccounted."""
    create(jc, "sleeper", "cron", "true", cron="* * * * *")
    until(lambda: len(runs(jc, "sleeper")) >= 2, 30, "ticks firing")
    judicator = jc.judicators[0]
    judicator.signal(signal.SIGSTOP)
    try:
        time.sleep(2.6)
    finally:
        judicator.signal(signal.SIGCONT)
    skipped = until(lambda: skipped_ticks(judicator.log(), "sleeper"), 30, "a logged skip")
    until(lambda: any(int(t["id"].split(".")[4][1:], 36) > max(skipped)
                      for t in runs(jc, "sleeper")), 30, "ticks after the skip")
    requests.delete(f"{jc.gateway_url}/api/v2/jobs/sleeper", timeout=10)
    numbers = sorted(int(t["id"].split(".")[4][1:], 36) for t in runs(jc, "sleeper"))
    assert len(set(numbers)) == len(numbers) and not skipped & set(numbers), (numbers, skipped)
    covered = set(numbers) | skipped
    assert sorted(covered) == list(range(numbers[0], max(covered) + 1)), (numbers, skipped)
    assert min(skipped) - 1 in numbers  # the earliest missed tick fired, late


def test_meproc_routes(jc: Cluster) -> None:
    url = f"{jc.gateway_url}/proc"
    r = requests.post(url, timeout=10, data='{"name": "task0", "cmd": "sleep 0.2", '
                      '"type": "once", "replica": 1}')
    assert r.json() == {"code": 200, "msg": "OK"}
    r = requests.post(url, timeout=10, data='{"name": "task1", "cmd": "sleep 5", "type": '
                      '"once", "replica": 2, "deps": ["task0"]}')
    assert r.status_code == 200 and r.json() == {"code": 200, "msg": "OK"}
    shown = until(lambda: (lambda d: d if d["data"]["tasks"]["task1"]["running"] == 2 else None)(
        requests.get(url, timeout=10).json()), 30, "task1 running")
    assert shown["code"] == 200 and shown["msg"] == "OK"
    info = shown["data"]["tasks"]["task1"]
    assert {k: info[k] for k in ("name", "cmd", "type", "replica", "user", "deps", "interval",
                                 "running", "run_flag", "group")} == {
        "name": "task1", "cmd": "sleep 5", "type": "once", "replica": 2, "user": None,
        "deps": ["task0"], "interval": 3, "running": 2, "run_flag": True, "group": None}
    assert isinstance(info["start_time"], int) and isinstance(info["last_time"], int)
    aliases = {p["alias"] for p in shown["data"]["running"] if p["command"] == "sleep 5"}
    assert aliases == {"task1:0", "task1:1"}
    assert all(p["pid"] is None or isinstance(p["pid"], int) for p in shown["data"]["running"])
    assert requests.put(f"{url}?name=task1", timeout=10).json() == {"code": 200, "msg": "OK"}
    assert requests.delete(f"{url}?name=task1", timeout=10).json() == {"code": 200, "msg": "OK"}
    stopped = requests.get(url, timeout=10).json()["data"]["tasks"]["task1"]  # still listed
    assert (stopped["status"], stopped["run_flag"]) == ("stopped", False)
    forgot = requests.delete(f"{url}?name=task1&forget=1", timeout=10)
    assert forgot.json() == {"code": 200, "msg": "OK"}
    missing = requests.put(f"{url}?name=nope", timeout=10)
    assert missing.status_code == 404 and missing.json()["code"] == 404
    bad = requests.post(url, timeout=10, data='{"name": "m", "cmd": "x", "type": "melang", '
                        '"replica": 1}')
    assert bad.json()["code"] == 400 and bad.json()["msg"]
    until(lambda: "task1" not in requests.get(url, timeout=10).json()["data"]["tasks"], 30,
          "task1 gone")
