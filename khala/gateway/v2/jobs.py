"""API v2 jobs (docs/jobs.md): the models, the views (mixed into V2Api) and the
routes (added to the route table, so they are in /openapi.json). Each view is one judicator
call (khala/rpc/jobs_client.py)."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, jsonify
from pydantic import BaseModel, Field

from khala.errors import InvalidInput
from khala.gateway.v2.errors import ApiError
from khala.jobs.model import MAX_REPLICA, JobSpec
from khala.model import Code
from khala.taskjson import convert
from khala.taskjson.models import StatusName, Strict, TaskIn

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
JobName = Field(pattern=NAME_PATTERN, examples=["nightly"])


class RetryIn(Strict):
    attempts: int = Field(0, ge=0, le=100, description="extra runs after a failed one")
    backoff: float = Field(1.0, ge=0, le=86400,
                           description="seconds before the first retry, doubled for each next")


class JobIn(Strict):
    """A job: `replica` copies of `task`, run once, kept running, or on a cron schedule."""

    name: str = JobName
    type: Literal["once", "daemon", "cron"]
    task: TaskIn = Field(description="the template of every run")
    replica: int = Field(1, ge=1, le=MAX_REPLICA, description="runs at once")
    cron: str = Field("* * * * *", description="cron jobs: minute hour day month weekday (UTC)")
    interval: float = Field(3.0, ge=0, le=86400 * 366,
                            description="daemon: seconds from a run's end to its restart")
    deps: list[str] = Field(default_factory=list, max_length=32,
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
                                    "stopping, deleting")
    generation: int = Field(description="restarts so far")
    created: str
    tasks: list[JobTask] = Field(description="its running tasks")
    last_start: str | None
    last_end: str | None
    blocked: str | None


class JobEnvelope(BaseModel):
    data: JobOut


class JobList(BaseModel):
    data: list[JobOut]


def job_out(data: dict[str, Any]) -> dict[str, Any]:
    tasks = [{**t, "status": convert.status_name(int(t["status"]))} for t in data["tasks"]]
    return JobOut(**{**data, "tasks": tasks}).model_dump(mode="json")


def spec_of(body: JobIn, meta: dict[str, Any] | None = None) -> JobSpec:
    try:
        template = convert.task_from_model(body.task, None)
    except InvalidInput as exc:
        raise ApiError(422, f"task: {exc}") from exc
    return JobSpec(name=body.name, type=body.type, template=template, replica=body.replica,
                   cron=body.cron, interval=body.interval, deps=list(body.deps),
                   retry_attempts=body.retry.attempts, retry_backoff=body.retry.backoff,
                   meta=meta or {})


STATUS = {Code.NOT_EXIST: 404, Code.CONFLICT: 409, Code.INVALID_INPUT: 422, Code.ERROR: 503}


def checked(answer: tuple[int, Any, str]) -> Any:
    code, data, detail = answer
    if code != Code.OK:
        raise ApiError(STATUS.get(Code(code), 500) if code in set(Code) else 500,
                       detail or "refused")
    return data


class JobViews:
    tasks: Any  # the typed client (JudicatorClient: job_* calls)

    def _json_job(self) -> JobIn:
        from khala.gateway.v2.views import _json_body, _validate

        return _validate(JobIn, _json_body(), from_json=True)  # type: ignore[no-any-return]

    def job_create(self) -> Response:
        data = checked(self.tasks.job_create(spec_of(self._json_job())))
        response = jsonify({"data": job_out(data)})
        response.status_code = 201
        response.headers["Location"] = f"/api/v2/jobs/{data['name']}"
        return response

    def job_list(self) -> Response:
        return jsonify({"data": [job_out(j) for j in checked(self.tasks.job_list())]})

    def job_get(self, name: str) -> Response:
        return jsonify({"data": job_out(checked(self.tasks.job_get(name)))})

    def job_restart(self, name: str) -> Response:
        return jsonify({"data": job_out(checked(self.tasks.job_restart(name)))})

    def job_delete(self, name: str) -> Response:
        data = checked(self.tasks.job_delete(name))
        response = jsonify({"data": job_out(data) if "type" in data else None})
        response.status_code = 202
        return response


def job_routes(route: Any, error: Any) -> list[Any]:
    """The job routes, as spec.Route entries."""
    name = {"name": {"type": "string", "pattern": NAME_PATTERN}}
    e = error
    return [
        route("post", "/api/v2/jobs", "job_create", "Create a job and start it", body=JobIn,
              responses={201: (JobEnvelope, "created"), 409: (e, "a job has this name"),
                         422: (e, "invalid job")}, tag="jobs"),
        route("get", "/api/v2/jobs", "job_list", "Every job with its running tasks",
              responses={200: (JobList, "the jobs")}, tag="jobs"),
        route("get", "/api/v2/jobs/{name}", "job_get", "One job", path_params=name,
              responses={200: (JobEnvelope, "the job"), 404: (e, "no such job")}, tag="jobs"),
        route("post", "/api/v2/jobs/{name}/restart", "job_restart",
              "Stop its tasks (SIGTERM, then kill after the grace period) and start it again",
              path_params=name,
              responses={200: (JobEnvelope, "restarting"), 404: (e, "no such job"),
                         409: (e, "the job is being deleted")}, tag="jobs"),
        route("delete", "/api/v2/jobs/{name}", "job_delete",
              "Stop its tasks and delete it for good", path_params=name,
              responses={202: (JobEnvelope, "stopping, then deleted"),
                         404: (e, "no such job")}, tag="jobs"),
    ]
