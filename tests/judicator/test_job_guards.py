"""What clients cannot do to jobs, on a real cluster (judicator with the fast cron clock, one
executor, one gateway): squat a run's key, make the scheduler adopt a task it did not create,
make a daemon that exits at once restart without back-off or keep every run forever, or create
jobs that wait on each other in a cycle."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from khala import model
from khala.jobs.model import JobSpec, JobState, b36, spec_to_dict, state_to_dict
from khala.model import Code, Compile, Execute, Status, Task
from khala.rpc import convert
from khala.store import open_store
from tests.fixtures.cluster import Cluster
from tests.fixtures.waiting import until

pytestmark = pytest.mark.integration

BACKOFF, BACKOFF_MAX, KEEP = 0.4, 1.6, 5


@pytest.fixture(scope="module")
def jc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("guards"))
    try:
        c.start_judicator(cron_unit=1, job_pass=0.2, job_stop_grace=1, job_backoff=BACKOFF,
                          job_backoff_max=BACKOFF_MAX, job_keep_runs=KEEP)
        c.start_executor(slots=4)
        c.start_gateway()
        yield c
    finally:
        c.stop()


def job(c: Cluster, name: str) -> dict[str, Any] | None:
    r = requests.get(f"{c.gateway_url}/api/v2/jobs/{name}", timeout=10)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def create(c: Cluster, name: str, kind: str, command: str, **fields: Any) -> requests.Response:
    body = {"name": name, "type": kind,
            "task": {"compile": {"command": "true"}, "execute": {"command": command}}, **fields}
    return requests.post(f"{c.gateway_url}/api/v2/jobs", json=body, timeout=10)


def task(c: Cluster, ref: str) -> dict[str, Any] | None:
    r = requests.get(f"{c.gateway_url}/api/v2/tasks/{ref}", timeout=10)
    return r.json()["data"] if r.status_code == 200 else None


def runs_of(c: Cluster, name: str) -> dict[str, dict[str, Any]]:
    r = requests.get(f"{c.gateway_url}/api/v2/tasks", params={"limit": 1000}, timeout=10)
    return {t["id"]: t for t in r.json()["data"] if t["id"].startswith(name + ".")}


def running_run(c: Cluster, name: str) -> dict[str, Any]:
    return until(lambda: (lambda j: j and j["tasks"] and j["tasks"][0]["status"] == "running"
                          and j["tasks"][0])(job(c, name)), 30, f"{name} running")


def next_key(key: str) -> str:
    head, run = key.rsplit(".", 1)
    return f"{head}.{b36(int(run, 36) + 1)}"


def wire_task(command: str, key: str | None = None) -> Any:
    t = Task(user=7, compile=Compile(command="true"), execute=Execute(command=command), key=key)
    return convert.task_to_thrift(t)


def kill(c: Cluster, ref: str) -> None:
    r = requests.put(f"{c.gateway_url}/api/v2/tasks/{ref}/signals/KILL", timeout=10)
    assert r.status_code == 202, r.text


def delete_job(c: Cluster, name: str) -> None:
    assert requests.delete(f"{c.gateway_url}/api/v2/jobs/{name}", timeout=10).status_code == 202
    until(lambda: job(c, name) is None, 30, f"{name} deleted")


# ----------------------------------------------------------------------------- run keys


def test_run_keys_are_reserved_on_every_path(jc: Cluster) -> None:
    assert create(jc, "squatted", "daemon", "sleep 60", interval=0).status_code == 201
    current = running_run(jc, "squatted")["id"]
    taken = next_key(current)  # what the scheduler will submit when this run ends
    body = {"compile": {"command": "true"}, "execute": {"command": "echo squatter"}}
    for key in (taken, "nightly.abcdef.0.0.0", "other-job.012345.1.0.t9.0"):
        r = requests.post(f"{jc.gateway_url}/api/v2/tasks/{key}", json=body, timeout=10)
        assert r.status_code == 422, (key, r.text)
        assert "reserved for job runs" in r.json()["errors"][0]["detail"], r.text
    batch = requests.post(f"{jc.gateway_url}/api/v2/batches", timeout=10,
                          json={"tasks": [{**body, "id": taken}, body]})
    assert [o["status"] for o in batch.json()["data"]] == [422, 201], batch.text
    rpc = jc.rpc()
    [answer] = rpc.submit([wire_task("echo squatter", taken)])
    assert answer.result == Code.INVALID_INPUT and "reserved" in answer.detail
    assert rpc.add(wire_task("echo squatter", taken)).result == Code.INVALID_INPUT
    assert task(jc, taken) is None  # nothing holds the key
    ok = requests.post(f"{jc.gateway_url}/api/v2/tasks/my.build.1", json=body, timeout=10)
    assert ok.status_code == 201, ok.text  # other dotted ids stay the client's

    kill(jc, current)
    after = until(lambda: task(jc, taken), 30, "the next run")
    assert after["execute"]["command"] == "sleep 60"  # the job's own command runs
    delete_job(jc, "squatted")


def test_a_task_holding_a_run_key_is_never_adopted(jc: Cluster) -> None:
    """A key taken before the namespace was reserved (written into the store as an older
    gateway would have): the scheduler blocks the job instead of adopting the task, and
    deleting the job leaves that task alone."""
    assert create(jc, "adopter", "daemon", "sleep 60", interval=0).status_code == 201
    current = running_run(jc, "adopter")["id"]
    taken = next_key(current)
    store = open_store(f"sqlite:///{jc.tmp / 'khala.db'}")
    try:
        foreign = Task(user=7, compile=Compile(command="true"),
                       execute=Execute(command="sleep 30"), key=taken,
                       add_time=model.now(), status=Status.PENDING)
        foreign.id = store.claim_key(taken, model.new_id())
        assert store.insert_new(foreign)
    finally:
        store.close()
    until(lambda: (task(jc, taken) or {}).get("status") == "running", 30, "foreign running")

    kill(jc, current)
    blocked = until(lambda: (lambda j: j if j["status"] == "blocked" else None)(
        job(jc, "adopter")), 30, "blocked")
    assert taken in blocked["blocked"] and "did not create" in blocked["blocked"]
    assert blocked["tasks"] == []  # not shown as the job's run
    delete_job(jc, "adopter")
    held = task(jc, taken)
    assert held is not None and held["status"] == "running"  # not cancelled with the job
    requests.post(f"{jc.gateway_url}/api/v2/tasks/{taken}/cancel", timeout=10)


# ----------------------------------------------------------------------------- daemons


def expected_delay(streak: int) -> float:
    """The rule of docs/jobs.md with interval 0: back-off doubling from BACKOFF, capped."""
    return min(BACKOFF_MAX, BACKOFF * 2 ** (streak - 1))


def test_a_daemon_that_exits_at_once_backs_off(jc: Cluster) -> None:
    assert create(jc, "flapper", "daemon", "true", interval=0).status_code == 201
    seen: dict[str, dict[str, Any]] = {}

    def six_runs() -> bool:
        seen.update({k: t for k, t in runs_of(jc, "flapper").items() if t["done"]})
        return len(seen) >= 6

    until(six_runs, 60, "six runs of the daemon", step=0.1)
    delete_job(jc, "flapper")
    ordered = sorted(seen.values(), key=lambda t: int(t["id"].rsplit(".", 1)[1], 36))
    numbers = [int(t["id"].rsplit(".", 1)[1], 36) for t in ordered]
    assert numbers[:6] == list(range(6)), numbers
    for k in range(1, 6):
        gap = _seconds(ordered[k]["add_time"]) - _seconds(ordered[k - 1]["report_time"])
        assert gap >= expected_delay(k) - 0.001, (k, gap, ordered[k - 1], ordered[k])


def _seconds(text: str) -> float:
    return model.parse_time(text).replace(tzinfo=dt.UTC).timestamp()


def test_finished_runs_beyond_the_bound_are_removed(jc: Cluster) -> None:
    attempts = 9
    assert create(jc, "failing", "once", "exit 3",
                  retry={"attempts": attempts, "backoff": 0}).status_code == 201
    until(lambda: (job(jc, "failing") or {}).get("status") == "failed", 60, "failed for good")
    until(lambda: len(runs_of(jc, "failing")) == KEEP + 1, 30, "old runs removed")
    kept = runs_of(jc, "failing")
    numbers = sorted(int(k.rsplit(".", 1)[1], 36) for k in kept)
    assert numbers == list(range(attempts - KEEP, attempts + 1))  # the latest ones stay
    assert all(t["status"] == "run_failed" for t in kept.values())
    time.sleep(1)
    assert len(runs_of(jc, "failing")) == KEEP + 1
    delete_job(jc, "failing")


# ----------------------------------------------------------------------------- cycles


def test_dependency_cycles_are_refused_on_every_path(jc: Cluster) -> None:
    for name, deps in (("cy1", ["cy2"]), ("cy2", ["cy3"])):
        assert create(jc, name, "once", "true", deps=deps).status_code == 201
    r = create(jc, "cy3", "once", "true", deps=["cy1"])
    assert r.status_code == 422, r.text
    detail = r.json()["errors"][0]["detail"]
    assert "cycle" in detail and "cy3 → cy1 → cy2 → cy3" in detail, detail

    proc = requests.post(f"{jc.gateway_url}/proc", timeout=10, data=json.dumps(
        {"name": "cy3", "cmd": "true", "type": "once", "replica": 1, "deps": ["cy1"]}))
    assert proc.status_code == 400 and "cy3 → cy1 → cy2 → cy3" in proc.json()["msg"], proc.text

    spec = {"name": "cy3", "type": "daemon", "deps": ["cy4", "cy1"]}
    answer = jc.rpc().jobs("create", "cy3", json.dumps(spec), wire_task("true"))
    assert answer.result == Code.INVALID_INPUT and "cy3 → cy1 → cy2 → cy3" in answer.detail

    assert job(jc, "cy3") is None
    ok = create(jc, "cy3", "once", "true", deps=["cy4"])  # no cycle (cy4 is no job yet)
    assert ok.status_code == 201, ok.text
    for name in ("cy1", "cy2", "cy3"):
        delete_job(jc, name)


def test_a_cycle_that_slipped_in_is_shown_blocked(jc: Cluster) -> None:
    """Two judicators creating the two halves of a cycle at once can both pass the check: the
    scheduler then blocks both with the cycle as the reason (written here into the store as
    such a race would leave it)."""
    store = open_store(f"sqlite:///{jc.tmp / 'khala.db'}")
    try:
        for name, dep in (("race-a", "race-b"), ("race-b", "race-a")):
            template = Task(user=0, compile=Compile(command="true"),
                            execute=Execute(command="true"))
            spec = JobSpec(name=name, type="once", template=template, deps=[dep])
            assert store.create_job(name, spec_to_dict(spec),
                                    state_to_dict(JobState(created=model.now())))
    finally:
        store.close()
    for name in ("race-a", "race-b"):
        shown = until(lambda n=name: (lambda j: j if j["status"] == "blocked" else None)(
            job(jc, n)), 30, f"{name} blocked")
        assert "dependency cycle" in shown["blocked"], shown
        assert "race-a" in shown["blocked"] and "race-b" in shown["blocked"]
        delete_job(jc, name)
