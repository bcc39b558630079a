"""The route table of API v2 and the OpenAPI 3.1 document generated from it and the models.

The Flask routes are registered from the same table (khala.gateway.v2.v2_blueprint), so every
documented operation is served and every served operation is documented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from khala import __version__
from khala.gateway.v2.images import ImageEnvelope, ImageList, ImportQuery
from khala.gateway.v2.jobs import JobEnvelope, JobIn, JobList
from khala.gateway.v2.parse import SIGNAL_PATTERN, ListQuery, wait_query
from khala.gateway.v2.problems import (
    FileEnvelope,
    PackageQuery,
    ProblemEnvelope,
    ProblemIn,
    ProblemList,
    RejudgeEnvelope,
    RejudgeIn,
    RejudgeList,
    VersionCreated,
    VersionEnvelope,
)
from khala.gateway.v2.sources import source_routes
from khala.images.model import IMAGE_NAME_PATTERN
from khala.jobs.model import NAME_PATTERN
from khala.model import INT_MAX
from khala.problems.model import PROBLEM_ID_PATTERN
from khala.taskjson.base import ID_PATTERN
from khala.taskjson.models import (
    Accepted,
    BatchEnvelope,
    BatchIn,
    ErrorEnvelope,
    ExecutorEnvelope,
    ExecutorList,
    LanguageList,
    TaskEnvelope,
    TaskIn,
    TaskPage,
)

REF = "#/components/schemas/{model}"
RAW = "raw"  # a response (or request body) of raw bytes
PACKAGE = "package"  # a request body that is a zip package, or a spec document


@dataclass
class Route:
    method: str
    path: str  # OpenAPI form, /api/v2/tasks/{id}
    view: str  # the method serving it: of the views of its tag (tasks, jobs, problems)
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: dict[int, tuple[Any, str]] = field(default_factory=dict)
    tag: str = "tasks"
    body_kind: str = ""  # PACKAGE or RAW: a body that is not a JSON model

    @property
    def rule(self) -> str:
        """The Flask rule: {name} → <name>, <int:name> for an integer parameter."""
        rule = self.path
        for name, schema in self.path_params.items():
            kind = "int:" if schema.get("type") == "integer" else ""
            rule = rule.replace("{" + name + "}", f"<{kind}{name}>")
        return rule.replace("{", "<").replace("}", ">")


ID = {"id": {"type": "string", "pattern": ID_PATTERN}}
ERRORS = {
    400: (ErrorEnvelope, "malformed request"),
    503: (ErrorEnvelope, "no judicator answered"),
}


def routes(max_wait: float) -> list[Route]:
    e = ErrorEnvelope
    return [
        Route("post", "/api/v2/tasks", "create", "Submit a task (Khala chooses the id)",
              body=TaskIn, responses={201: (TaskEnvelope, "created"), 413: (e, "too large"),
                                      422: (e, "invalid task")}),
        Route("get", "/api/v2/tasks", "list", "List tasks, newest first, a page at a time",
              query=ListQuery, responses={200: (TaskPage, "a page")}),
        Route("post", "/api/v2/tasks/{id}", "create_with_id",
              "Submit a task under a client-chosen id (idempotent)", body=TaskIn,
              path_params=ID,
              responses={201: (TaskEnvelope, "created"),
                         200: (TaskEnvelope, "an identical task had this id"),
                         409: (e, "a different task has this id"), 413: (e, "too large"),
                         422: (e, "invalid task")}),
        Route("get", "/api/v2/tasks/{id}", "get", "A task; ?wait= holds until it is done",
              query=wait_query(max_wait), path_params=ID,
              responses={200: (TaskEnvelope, "the task"), 404: (e, "no such task"),
                         429: (e, "?wait= beyond the gateway's waits at once (max_waits) on "
                                  "an undone task: ask again after Retry-After")}),
        Route("delete", "/api/v2/tasks/{id}", "delete", "Remove a finished task",
              path_params=ID,
              responses={204: (None, "removed"), 404: (e, "no such task"),
                         409: (e, "the task is not done")}),
        Route("post", "/api/v2/tasks/{id}/cancel", "cancel", "Cancel a task", path_params=ID,
              responses={200: (TaskEnvelope, "cancelled"), 404: (e, "no such task"),
                         409: (e, "the task is done")}),
        Route("put", "/api/v2/tasks/{id}/signals/{signal}", "signal",
              "Send a signal to the running step's processes",
              path_params={**ID, "signal": {"type": "string", "pattern": SIGNAL_PATTERN,
                                            "examples": ["TERM", "SIGUSR1", "9"]}},
              responses={202: (Accepted, "queued for the running step"),
                         404: (e, "no such task"), 409: (e, "the task is done"),
                         422: (e, "unknown signal")}),
        Route("get", "/api/v2/tasks/{id}/outputs/{step}/{stream}", "output",
              "Raw bytes of one output stream (gzip or br on request)",
              path_params={**ID, "step": {"type": "string", "enum": ["compile", "execute"]},
                           "stream": {"type": "string", "enum": ["stdout", "stderr"]}},
              responses={200: (RAW, "the bytes"), 404: (e, "no such task"),
                         409: (e, "the task is not done")}),
        Route("get", "/api/v2/languages", "languages",
              "Language presets of live executors, with versions (docs/judging.md)",
              responses={200: (LanguageList, "the presets, by name")}),
        Route("get", "/api/v2/executors", "executors",
              "Live executors with their statistics (slots, running tasks' usage, host)",
              responses={200: (ExecutorList, "the executors")}),
        Route("get", "/api/v2/executors/{name}", "executor", "One live executor's statistics",
              path_params={"name": {"type": "string", "maxLength": 255}},
              responses={200: (ExecutorEnvelope, "the executor"),
                         404: (e, "no such live executor")}),
        Route("post", "/api/v2/batches", "batch", "Submit up to 1000 tasks at once",
              body=BatchIn, responses={200: (BatchEnvelope, "one outcome per task, in order"),
                                       413: (e, "too large"), 422: (e, "invalid batch")}),
        *source_routes(Route, e, ID),
        *_job_routes(),
        *_problem_routes(),
        *_image_routes(),
    ]


def _image_routes() -> list[Route]:
    e, tag = ErrorEnvelope, "images"
    name: dict[str, dict[str, Any]] = {"name": {"type": "string", "pattern": IMAGE_NAME_PATTERN}}
    version = {**name, "version": {"type": "integer", "minimum": 1, "maximum": INT_MAX}}
    return [
        Route("get", "/api/v2/images", "image_list",
              "Every image's versions (docs/images.md), by name then version",
              responses={200: (ImageList, "the images")}, tag=tag),
        Route("post", "/api/v2/images/{name}", "image_import",
              "Import a tar of a root filesystem (plain, gzip, bzip2 or xz) as the image's "
              "next version", query=ImportQuery, path_params=name, body_kind=RAW,
              responses={201: (ImageEnvelope, "the new version"), 413: (e, "too large"),
                         422: (e, "a tar Khala refuses, and why")}, tag=tag),
        Route("delete", "/api/v2/images/{name}/versions/{version}", "image_delete",
              "Delete a version (tasks that name it still run in it)", path_params=version,
              responses={204: (None, "deleted"), 404: (e, "no such version")}, tag=tag),
    ]


def _job_routes() -> list[Route]:
    name = {"name": {"type": "string", "pattern": NAME_PATTERN}}
    e = ErrorEnvelope
    return [
        Route("post", "/api/v2/jobs", "job_create", "Create a job and start it", body=JobIn,
              responses={201: (JobEnvelope, "created"), 409: (e, "a job has this name"),
                         422: (e, "invalid job")}, tag="jobs"),
        Route("get", "/api/v2/jobs", "job_list", "Every job with its running tasks",
              responses={200: (JobList, "the jobs")}, tag="jobs"),
        Route("get", "/api/v2/jobs/{name}", "job_get", "One job", path_params=name,
              responses={200: (JobEnvelope, "the job"), 404: (e, "no such job")}, tag="jobs"),
        Route("post", "/api/v2/jobs/{name}/restart", "job_restart",
              "Stop its tasks (SIGTERM, then kill after the grace period) and start it again",
              path_params=name,
              responses={200: (JobEnvelope, "restarting"), 404: (e, "no such job"),
                         409: (e, "the job is being deleted")}, tag="jobs"),
        Route("post", "/api/v2/jobs/{name}/stop", "job_stop",
              "Stop its tasks and keep it, stopped, until a restart (or a delete)",
              path_params=name,
              responses={200: (JobEnvelope, "stopped (its tasks end)"),
                         404: (e, "no such job"),
                         409: (e, "the job is being deleted")}, tag="jobs"),
        Route("delete", "/api/v2/jobs/{name}", "job_delete",
              "Stop its tasks and delete it for good", path_params=name,
              responses={202: (JobEnvelope, "stopping, then deleted"),
                         404: (e, "no such job")}, tag="jobs"),
    ]


def _problem_routes() -> list[Route]:
    e, tag = ErrorEnvelope, "problems"
    problem: dict[str, dict[str, Any]] = {
        "id": {"type": "string", "pattern": PROBLEM_ID_PATTERN}}
    version = {**problem, "version": {"type": "integer", "minimum": 1, "maximum": INT_MAX}}
    sha = {"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}
    return [
        Route("get", "/api/v2/problems", "problem_list", "Every problem with its versions",
              responses={200: (ProblemList, "the problems")}, tag=tag),
        Route("post", "/api/v2/problems", "problem_create", "Create a problem (no version yet)",
              body=ProblemIn, responses={201: (ProblemEnvelope, "created"),
                                         409: (e, "a problem has this id")}, tag=tag),
        Route("get", "/api/v2/problems/{id}", "problem_get", "A problem and its versions",
              path_params=problem, responses={200: (ProblemEnvelope, "the problem"),
                                              404: (e, "no such problem")}, tag=tag),
        Route("delete", "/api/v2/problems/{id}", "problem_delete",
              "Delete a problem and its versions", path_params=problem,
              responses={204: (None, "deleted"), 404: (e, "no such problem"),
                         409: (e, "tasks name the problem")}, tag=tag),
        Route("post", "/api/v2/problems/{id}/versions", "version_create",
              "Add a version: a package (zip body: problem.toml or Polygon's problem.xml) or "
              "a spec document (JSON body) whose files are stored (PUT /api/v2/files/…)",
              query=PackageQuery, path_params=problem, body_kind=PACKAGE,
              responses={201: (VersionCreated, "the new version"), 413: (e, "too large"),
                         422: (e, "not a package Khala can store, and why")}, tag=tag),
        Route("get", "/api/v2/problems/{id}/versions/{version}", "version_get",
              "One version with its cases", path_params=version,
              responses={200: (VersionEnvelope, "the version"),
                         404: (e, "no such version")}, tag=tag),
        Route("delete", "/api/v2/problems/{id}/versions/{version}", "version_delete",
              "Delete a version", path_params=version,
              responses={204: (None, "deleted"), 404: (e, "no such version"),
                         409: (e, "tasks were judged against it")}, tag=tag),
        Route("post", "/api/v2/problems/{id}/rejudges", "rejudge_create",
              "Judge the problem's tasks again (a lower priority than new tasks)",
              body=RejudgeIn, path_params=problem,
              responses={202: (RejudgeEnvelope, "started"), 404: (e, "no such problem"),
                         422: (e, "no such version, or a bad filter")}, tag=tag),
        Route("get", "/api/v2/problems/{id}/rejudges", "rejudge_list",
              "The problem's rejudges with their progress", path_params=problem,
              responses={200: (RejudgeList, "the rejudges"), 404: (e, "no such problem")},
              tag=tag),
        Route("get", "/api/v2/rejudges/{rid}", "rejudge_get", "One rejudge's progress",
              path_params={"rid": {"type": "string", "pattern": "^[0-9a-f]{24}$"}},
              responses={200: (RejudgeEnvelope, "the rejudge"),
                         404: (e, "no such rejudge")}, tag=tag),
        Route("head", "/api/v2/files/{sha256}", "file_head",
              "Whether the store has a file (200) or not (404)", path_params=sha,
              responses={200: (None, "stored"), 404: (None, "not stored")}, tag=tag),
        Route("put", "/api/v2/files/{sha256}", "file_put",
              "Store a file (the body, checked against its sha256)", path_params=sha,
              body_kind=RAW, responses={201: (FileEnvelope, "stored"),
                                        200: (FileEnvelope, "stored already"),
                                        413: (e, "too large"),
                                        422: (e, "the body does not hash to the sha256")},
              tag=tag),
    ]


def _parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in route.path_params.items()
    ]
    if route.query is not None:
        schema = route.query.model_json_schema(ref_template=REF)
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": False,
                                     "schema": prop}
            if prop.get("type") == "array":
                param.update(style="form", explode=True)
            params.append(param)
    return params


def _response(model: Any, description: str, refs: dict[Any, Any]) -> dict[str, Any]:
    if model is None:
        return {"description": description}
    if model == RAW:
        return {"description": description, "content": {"application/octet-stream": {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}
    return {"description": description,
            "content": {"application/json": {"schema": refs[(model, "serialization")]}}}


def _operation(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    responses = {**ERRORS, **route.responses}
    op: dict[str, Any] = {
        "operationId": route.view,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": _parameters(route),
        "responses": {str(code): _response(m, d, refs)
                      for code, (m, d) in sorted(responses.items())},
    }
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": refs[(route.body, "validation")]}}}
    raw = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
    if route.body_kind == RAW:
        op["requestBody"] = {"required": True, "content": {"application/octet-stream": raw}}
    elif route.body_kind == PACKAGE:
        op["requestBody"] = {"required": True, "content": {
            "application/zip": raw,
            "application/json": {"schema": {"type": "object", "description":
                                            "a spec document (docs/judging.md)"}}}}
    return op


def openapi(max_wait: float, more: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of API v2 and the seed API, and the paths `more` (the routes
    beside them: khala/gateway/paths.py)."""
    table = routes(max_wait)
    models: set[tuple[Any, Literal["validation", "serialization"]]] = {(ErrorEnvelope,
                                                                        "serialization")}
    for route in table:
        if route.body is not None:
            models.add((route.body, "validation"))
        models.update((m, "serialization") for m, _ in route.responses.values()
                      if isinstance(m, type))
    refs, top = models_json_schema(sorted(models, key=lambda p: (p[0].__name__, p[1])),
                                   ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in table:
        paths.setdefault(route.path, {})[route.method] = _operation(route, refs)
    paths.update(seed_paths())
    paths.update(more or {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Khala", "version": __version__,
                 "description": "API v2 (JSON), its live routes, the seed HTTP API and the "
                                "neighbouring seeds' APIs (Procstar, pow-1 REST, Meproc). "
                                "See docs/api-v2.md."},
        "paths": paths,
        "components": {"schemas": top.get("$defs", {})},
    }


def seed_paths() -> dict[str, dict[str, Any]]:
    """The seed-004 API as it is (docs/http-api.md): JSON answers with a `result` code."""
    answer = {"200": {"description": "a JSON answer; `result` 0 = OK (docs/http-api.md)",
                      "content": {"application/json": {"schema": {"type": "object"}}}}}
    id_param = {"name": "id", "in": "query", "required": False, "schema": {"type": "string"}}
    form = {"content": {"multipart/form-data": {"schema": {"type": "object"}}}}
    seed = {"tags": ["seed API"], "responses": answer}
    return {
        "/api/test": {"get": {"operationId": "seed_test", "summary": "liveness (text)",
                              "tags": ["seed API"], "responses": {"200": {
                                  "description": "the text", "content": {"text/plain": {
                                      "schema": {"type": "string"}}}}}}},
        "/api/task": {
            "post": {**seed, "operationId": "seed_add", "summary": "add a task (form)",
                     "requestBody": form},
            "get": {**seed, "operationId": "seed_get", "summary": "a task or one of its files",
                    "parameters": [id_param]},
            "delete": {**seed, "operationId": "seed_cancel", "summary": "cancel a task",
                       "parameters": [id_param]},
        },
        "/api/task/list": {"get": {**seed, "operationId": "seed_search",
                                   "summary": "search tasks"}},
        "/api/executors": {"get": {**seed, "operationId": "seed_executors",
                                   "summary": "live executors"}},
        "/api/judicators": {"get": {**seed, "operationId": "seed_judicators",
                                    "summary": "live judicators"}},
    }
