"""Meproc-compatible routes (seed 003; docs/jobs.md, "Meproc routes"): `/proc` with Meproc's
fields and its `{code, msg, data}` answers, so Meproc clients can use Khala. A Meproc task is
a Khala job whose task template runs `cmd` (compile `true`, no time limit):

    POST   /proc              {name, cmd, type, replica, user, group, cron, interval, deps}
    PUT    /proc?name=NAME    restart
    DELETE /proc?name=NAME    stop (SIGTERM, then kill after the grace period) and forget
    GET    /proc              {running: [{command, pid, alias}], tasks: {NAME: {…}}}

`user` and `group` are Unix names in Meproc: a numeric `user` becomes the Khala user id, any
other value is kept and shown back (runs belong to user 0). `pid` is 0: runs are sandboxed on
an executor, whose pids Khala does not report; `task` and `executor` name the run instead.

One blueprint ("meproc"); everything it cannot do is answered in Meproc's `{code, msg}` with
the HTTP status as `code` (400 for any invalid request, as Meproc does).
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import HTTPException

from khala.errors import InvalidInput, KhalaError, RemoteError, Unavailable
from khala.gateway.auth import KeyRefused
from khala.jobs.model import MAX_REPLICA, NAME_PATTERN, JobSpec, JobView
from khala.model import Compile, Execute, Task, parse_time
from khala.rpc.client import JudicatorClient

log = logging.getLogger(__name__)


class ProcIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=NAME_PATTERN)
    type: str
    cmd: str = Field(min_length=1)
    replica: int = Field(ge=1, le=MAX_REPLICA)
    user: str | None = None
    group: str | None = None
    cron: str = "* * * * *"
    interval: int = Field(3, ge=0)
    deps: list[str] = Field(default_factory=list)


def reply(code: int, msg: str, data: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    response = jsonify(body)
    response.status_code = code
    return response


def _epoch(text: str | None) -> int | None:
    return int(parse_time(text).replace(tzinfo=_dt.UTC).timestamp()) if text else None


def spec_of(proc: ProcIn) -> JobSpec:
    user = int(proc.user) if proc.user and proc.user.isdigit() else 0
    template = Task(user=user, compile=Compile(command="true"),
                    execute=Execute(command=proc.cmd))
    return JobSpec(name=proc.name, type=proc.type, template=template, replica=proc.replica,
                   cron=proc.cron, interval=float(proc.interval), deps=list(proc.deps),
                   meta={"user": proc.user, "group": proc.group})


def proc_of(job: JobView) -> dict[str, Any]:
    interval = job.interval
    return {
        "name": job.name,
        "cmd": job.command,
        "type": job.type,
        "replica": job.replica,
        "user": job.meta.get("user"),
        "group": job.meta.get("group"),
        "deps": job.deps,
        "interval": int(interval) if float(interval).is_integer() else interval,
        "cron": job.cron,
        "start_time": _epoch(job.last_start),
        "last_time": _epoch(job.last_end or job.last_start),
        "run_flag": bool(job.tasks),
        "running": len(job.tasks),
        "status": job.status,
    }


class MeprocApi:
    def __init__(self, client: JudicatorClient) -> None:
        self.client = client

    def start(self) -> Response:
        body = request.get_json(silent=True, force=True)
        try:
            proc = ProcIn.model_validate(body if isinstance(body, dict) else {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return reply(400, f"{where}: {first.get('msg', 'invalid')}")
        if proc.type not in ("once", "daemon", "cron"):
            return reply(400, f"type {proc.type!r} is not supported (once, daemon, cron)")
        self.client.job_create(spec_of(proc))
        return reply(200, "OK")

    @staticmethod
    def _name() -> str:
        name = request.args.get("name", "")
        if not name:
            raise InvalidInput("the name argument is required")
        return name

    def restart(self) -> Response:
        self.client.job_restart(self._name())
        return reply(200, "OK")

    def stop(self) -> Response:
        self.client.job_delete(self._name())
        return reply(200, "OK")

    def show(self) -> Response:
        jobs = self.client.job_list()
        running = [
            {"command": job.command, "pid": 0, "alias": t.alias, "task": t.id,
             "executor": t.executor}
            for job in jobs for t in job.tasks
        ]
        return reply(200, "OK", {"running": running,
                                 "tasks": {job.name: proc_of(job) for job in jobs}})


def on_refusal(exc: KhalaError) -> Response:
    if isinstance(exc, RemoteError):
        log.warning("%s %s: %s", request.method, request.path, exc)
        return reply(503, "a judicator could not do it")
    if isinstance(exc, Unavailable):
        log.warning("%s %s: %s", request.method, request.path, exc)
        return reply(503, "no judicator answered")
    if isinstance(exc, InvalidInput):
        return reply(400, str(exc))
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return reply(exc.http_status, "internal error")
    answer = reply(exc.http_status, str(exc))
    if isinstance(exc, KeyRefused):
        answer.headers.update(exc.headers)
    return answer


def on_http_error(exc: HTTPException) -> Response:
    """Also the answer to requests under /proc no route takes."""
    status = exc.code or 500
    return reply(status, f"{status} {exc.name}: {request.method} {request.path}")


def on_error(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    return reply(500, "internal error")


def meproc_blueprint(client: JudicatorClient) -> Blueprint:
    """Meproc's /proc (endpoint meproc.proc)."""
    api = MeprocApi(client)
    views = {"POST": api.start, "PUT": api.restart, "DELETE": api.stop, "GET": api.show}

    def proc() -> Response:
        return views[request.method]()

    blueprint = Blueprint("meproc", __name__)
    blueprint.add_url_rule("/proc", "proc", proc, methods=list(views))
    blueprint.register_error_handler(KhalaError, on_refusal)
    blueprint.register_error_handler(HTTPException, on_http_error)
    blueprint.register_error_handler(Exception, on_error)
    return blueprint
