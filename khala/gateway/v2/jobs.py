"""API v2 jobs (docs/jobs.md): the models and the views. Each view is one judicator call; the
routes are in the route table (spec.py), so they are in /openapi.json. The bounds are those of
khala/jobs/model.py, which the judicator checks too."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, jsonify
from pydantic import BaseModel, Field

from khala.config import GatewaySettings
from khala.errors import InvalidInput
from khala.gateway.v2 import parse
from khala.jobs.model import (
    MAX_DEPS,
    MAX_INTERVAL,
    MAX_REPLICA,
    MAX_RETRY_ATTEMPTS,
    MAX_RETRY_BACKOFF,
    NAME_PATTERN,
    JobSpec,
    JobView,
)
from khala.rpc.client import JudicatorClient
from khala.taskjson import convert
from khala.taskjson.models import StatusName, Strict, TaskIn

JobName = Field(pattern=NAME_PATTERN, examples=["nightly"])


class RetryIn(Strict):
    attempts: int = Field(0, ge=0, le=MAX_RETRY_ATTEMPTS,
                          description="extra runs after a failed one")
    backoff: float = Field(1.0, ge=0, le=MAX_RETRY_BACKOFF,
                           description="seconds before the first retry, doubled for each next")


class JobIn(Strict):
    """A job: `replica` copies of `task`, run once, kept running, or on a cron schedule."""

    name: str = JobName
    type: Literal["once", "daemon", "cron"]
    task: TaskIn = Field(description="the template of every run")
    replica: int = Field(1, ge=1, le=MAX_REPLICA, description="runs at once")
    cron: str = Field("* * * * *", description="cron jobs: minute hour day month weekday (UTC)")
    interval: float = Field(3.0, ge=0, le=MAX_INTERVAL,
                            description="daemon: seconds from a run's end to its restart")
    deps: list[str] = Field(default_factory=list, max_length=MAX_DEPS,
                            description="jobs that must have succeeded (daemons: be running)")
    retry: RetryIn = Field(default_factory=lambda: RetryIn(attempts=0, backoff=1.0),
                           description="once/cron: failed runs")


class JobTask(BaseModel):
    id: str = Field(description="the run's task id (its key)")
    seed_id: str
    alias: str = Field(examples=["nightly:0"])
    executor: str | None
    status: StatusName


class Retry(BaseModel):
    attempts: int
    backoff: float


class JobOut(BaseModel):
    name: str
    type: str
    replica: int
    cron: str
    interval: float
    deps: list[str]
    retry: Retry
    user: int
    priority: int
    command: str
    status: str = Field(description="waiting, running, scheduled, succeeded, failed, blocked, "
                                    "stopping, stopped, deleting")
    generation: int = Field(description="restarts so far")
    created: str
    tasks: list[JobTask] = Field(description="its running tasks (also those a restart, "
                                 "stop or delete is ending)")
    last_start: str | None
    last_end: str | None
    blocked: str | None


class JobEnvelope(BaseModel):
    data: JobOut


class JobList(BaseModel):
    data: list[JobOut]


def job_out(view: JobView) -> dict[str, Any]:
    return JobOut(
        name=view.name, type=view.type, replica=view.replica, cron=view.cron,
        interval=view.interval, deps=view.deps,
        retry=Retry(attempts=view.retry_attempts, backoff=view.retry_backoff),
        user=view.user, priority=view.priority, command=view.command, status=view.status,
        generation=view.generation, created=view.created,
        tasks=[JobTask(id=r.id, seed_id=r.seed_id, alias=r.alias, executor=r.executor,
                       status=StatusName(convert.status_name(r.status))) for r in view.tasks],
        last_start=view.last_start, last_end=view.last_end, blocked=view.blocked,
    ).model_dump(mode="json")


def spec_of(body: JobIn, meta: dict[str, Any] | None = None) -> JobSpec:
    """Raises InvalidInput for a task template the models let through but cannot be a task."""
    try:
        template = convert.task_from_model(body.task, None)
    except InvalidInput as exc:
        raise InvalidInput(f"task: {exc}") from exc
    return JobSpec(name=body.name, type=body.type, template=template, replica=body.replica,
                   cron=body.cron, interval=body.interval, deps=list(body.deps),
                   retry_attempts=body.retry.attempts, retry_backoff=body.retry.backoff,
                   meta=meta or {})


class JobViews:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient) -> None:
        self.settings = settings
        self.client = client

    def job_create(self) -> Response:
        view = self.client.job_create(spec_of(parse.validate(JobIn, parse.json_body(),
                                                              from_json=True)))
        response = jsonify({"data": job_out(view)})
        response.status_code = 201
        response.headers["Location"] = f"/api/v2/jobs/{view.name}"
        return response

    def job_list(self) -> Response:
        return jsonify({"data": [job_out(j) for j in self.client.job_list()]})

    def job_get(self, name: str) -> Response:
        return jsonify({"data": job_out(self.client.job_get(name))})

    def job_restart(self, name: str) -> Response:
        return jsonify({"data": job_out(self.client.job_restart(name))})

    def job_stop(self, name: str) -> Response:
        return jsonify({"data": job_out(self.client.job_stop(name))})

    def job_delete(self, name: str) -> Response:
        view = self.client.job_delete(name)
        response = jsonify({"data": None if view is None else job_out(view)})
        response.status_code = 202
        return response
