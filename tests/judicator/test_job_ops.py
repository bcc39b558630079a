"""The job ops Duxcore's services use, over Thrift against a real cluster (a judicator on
SQLite with a fast scheduler, an executor on the sandbox): `define` creates a job that runs
nothing until a restart; `meta` changes only the meta; `respec` replaces the template and
restarts under a new incarnation, `redefine` leaves it stopped; `inspect` answers the
template."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from khala.discovery.static import StaticDiscovery
from khala.errors import InvalidInput, NotFound
from khala.jobs.model import JobSpec
from khala.model import Compile, Execute, PageQuery, Status, Task
from khala.rpc.client import JudicatorClient
from tests.fixtures.cluster import Cluster
from tests.fixtures.waiting import until

pytestmark = pytest.mark.integration

WAIT = 60.0


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JudicatorClient]:
    c = Cluster(tmp_path_factory.mktemp("jobops"))
    try:
        c.start_judicator(job_pass=0.2, job_stop_grace=1)
        c.start_executor(slots=3)
        yield JudicatorClient(StaticDiscovery([c.judicator_address]), 30.0)
    finally:
        c.stop()


def spec(command: str, kind: str = "daemon", **meta: str) -> JobSpec:
    return JobSpec(name=f"j{uuid.uuid4().hex[:10]}", type=kind, interval=0.0, meta=dict(meta),
                   template=Task(compile=Compile(command="true"),
                                 execute=Execute(command=command, timeout=300)))


def runs(client: JudicatorClient, name: str) -> list[Task]:
    briefs, _ = client.page(PageQuery(key_prefix=name + ".", limit=100, old_to_new=True))
    return [client.find(b.id) for b in briefs]


def running(client: JudicatorClient, name: str, other_than: str = "") -> str:
    return until(lambda: next((r.seed_id for r in client.job_get(name).tasks  # type: ignore
                               if r.status == Status.RUNNING and r.seed_id != other_than), ""),
                 WAIT, f"{name} running")


def test_a_defined_job_runs_nothing_until_a_restart(client: JudicatorClient) -> None:
    held = spec("sleep 300")
    assert client.job_define(held).status == "stopped"
    later = spec("sleep 300")
    client.job_create(later)
    running(client, later.name)  # the scheduler has passed over every job since
    assert client.job_get(held.name).status == "stopped" and runs(client, held.name) == []
    client.job_restart(held.name)
    running(client, held.name)
    for job in (held, later):
        client.job_delete(job.name)


def test_meta_changes_nothing_else(client: JudicatorClient) -> None:
    job = spec("sleep 300", note="first")
    client.job_create(job)
    first = running(client, job.name)
    changed = client.job_set_meta(job.name, dataclasses.replace(job, meta={"note": "second"}))
    assert changed.meta == {"note": "second"} and changed.generation == 0
    shown = client.job_inspect(job.name)
    assert shown.template is not None and shown.template.execute.command == "sleep 300"
    assert [r.seed_id for r in shown.tasks] == [first]  # the run goes on
    assert client.job_get(job.name).template is None  # only inspect carries the template
    client.job_delete(job.name)


def test_respec_restarts_with_the_new_template_under_a_new_incarnation(
        client: JudicatorClient) -> None:
    job = spec("sleep 300")
    client.job_create(job)
    first = running(client, job.name)
    old_key = client.find(first).key or ""
    new = dataclasses.replace(job, meta={"v": "2"}, template=dataclasses.replace(
        job.template, execute=Execute(command="sleep 301", timeout=300)))
    client.job_respec(job.name, new, start=True)
    second = running(client, job.name, other_than=first)
    task = client.find(second)
    assert task.execute.command == "sleep 301"
    assert (task.key or "").split(".")[1] != old_key.split(".")[1]  # a new incarnation
    assert client.find(first, wait=WAIT).done  # the old run was stopped
    shown = client.job_inspect(job.name)
    assert shown.meta == {"v": "2"} and shown.status == "running"
    assert shown.template is not None and shown.template.execute.command == "sleep 301"
    client.job_respec(job.name, job, start=False)  # redefine: stopped, the old template back
    stopped = client.job_inspect(job.name)
    assert stopped.status == "stopped" and stopped.meta == {}
    assert stopped.template is not None and stopped.template.execute.command == "sleep 300"
    assert client.find(second, wait=WAIT).done
    client.job_delete(job.name)


def test_respec_checks_the_template_and_the_name(client: JudicatorClient) -> None:
    job = spec("true", kind="once")
    client.job_define(job)
    bad = dataclasses.replace(job, template=dataclasses.replace(
        job.template, execute=Execute(command="true", memory_limit=-1)))
    with pytest.raises(InvalidInput):
        client.job_respec(job.name, bad)
    assert client.job_inspect(job.name).status == "stopped"  # unchanged
    with pytest.raises(NotFound):
        client.job_respec("nosuchjob", job)
    with pytest.raises(NotFound):
        client.job_set_meta("nosuchjob", job)
    client.job_delete(job.name)
