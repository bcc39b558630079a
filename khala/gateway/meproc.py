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
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from khala.errors import Unavailable
from khala.gateway.v2.jobs import NAME_PATTERN
from khala.jobs.model import MAX_REPLICA, JobSpec
from khala.model import Code, Compile, Execute, Task, parse_time

STATUS = {Code.NOT_EXIST: 404, Code.CONFLICT: 409, Code.INVALID_INPUT: 400, Code.ERROR: 503}


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


def proc_of(job: dict[str, Any]) -> dict[str, Any]:
    meta = job.get("meta") or {}
    interval = job["interval"]
    return {
        "name": job["name"],
        "cmd": job["command"],
        "type": job["type"],
        "replica": job["replica"],
        "user": meta.get("user"),
        "group": meta.get("group"),
        "deps": job["deps"],
        "interval": int(interval) if float(interval).is_integer() else interval,
        "cron": job["cron"],
        "start_time": _epoch(job["last_start"]),
        "last_time": _epoch(job["last_end"] or job["last_start"]),
        "run_flag": bool(job["tasks"]),
        "running": len(job["tasks"]),
        "status": job["status"],
    }


class MeprocApi:
    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, answer: tuple[int, Any, str]) -> Any:
        code, data, detail = answer
        if code != Code.OK:
            raise _Refused(STATUS.get(Code(code), 500) if code in set(Code) else 500,
                           detail or "refused")
        return data

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
        self._call(self.client.job_create(spec_of(proc)))
        return reply(200, "OK")

    def _name(self) -> str:
        name = request.args.get("name", "")
        if not name:
            raise _Refused(400, "the name argument is required")
        return name

    def restart(self) -> Response:
        self._call(self.client.job_restart(self._name()))
        return reply(200, "OK")

    def stop(self) -> Response:
        self._call(self.client.job_delete(self._name()))
        return reply(200, "OK")

    def show(self) -> Response:
        jobs = self._call(self.client.job_list())
        running = [
            {"command": job["command"], "pid": 0, "alias": t["alias"], "task": t["id"],
             "executor": t["executor"]}
            for job in jobs for t in job["tasks"]
        ]
        return reply(200, "OK", {"running": running,
                                 "tasks": {job["name"]: proc_of(job) for job in jobs}})


class _Refused(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def meproc_error(status: int, message: str) -> Response:
    return reply(status, message)


def register_meproc(app: Flask, client: Any) -> None:
    api = MeprocApi(client)
    views = {"POST": api.start, "PUT": api.restart, "DELETE": api.stop, "GET": api.show}

    def proc() -> Response:
        try:
            return views[request.method]()
        except _Refused as exc:
            return reply(exc.code, exc.msg)
        except Unavailable:
            return reply(503, "no judicator answered")

    app.add_url_rule("/proc", "meproc", proc, methods=list(views))
