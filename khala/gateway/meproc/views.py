"""Meproc's `/proc` (seed 003) over Khala's jobs: a Meproc task is a job whose template runs
`cmd` (compile `true`, no time limit) as the host user and group its `user`/`group` name in
the operator's table (khala/rules/identity.py). Answers `{code, msg, data}` with the HTTP
status as `code` (docs/meproc.md).

    POST   /proc                    {name, cmd, type, replica, user, group, cron, interval, deps}
    PUT    /proc?name=NAME          restart (also of a stopped task)
    DELETE /proc?name=NAME          stop: SIGTERM, kill after the grace; the task stays listed
    DELETE /proc?name=NAME&forget=1 stop and forget it (an addition)
    GET    /proc                    {running: [{command, pid, alias}], tasks: {NAME: {…}}}
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from flask import Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from khala.config import GatewaySettings
from khala.errors import InvalidInput, KhalaError
from khala.jobs.model import MAX_REPLICA, NAME_PATTERN, JobSpec, JobView
from khala.model import Compile, Execute, Status, Task, parse_time
from khala.rpc.client import JudicatorClient
from khala.rules import identity

MELANG = ("type melang (a Melang coroutine script) is not supported: Khala runs shell "
          "commands only (once, daemon, cron); see docs/meproc.md")
#: Job statuses under which Khala starts no more processes of the task.
NOT_RUNNING = frozenset({"stopped", "deleting", "succeeded", "failed", "blocked"})


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


def spec_of(proc: ProcIn, table: identity.Table) -> JobSpec:
    """The job of a Meproc task. InvalidInput for a user or group the table does not allow."""
    uid, gid = identity.resolve(proc.user, proc.group, table)
    template = Task(compile=Compile(command="true"),
                    execute=Execute(command=proc.cmd, run_uid=uid, run_gid=gid))
    return JobSpec(name=proc.name, type=proc.type, template=template, replica=proc.replica,
                   cron=proc.cron, interval=float(proc.interval), deps=list(proc.deps),
                   meta={"user": proc.user, "group": proc.group})


def proc_of(job: JobView, running: int) -> dict[str, Any]:
    """A task of the listing: Meproc's fields in its order, then Khala's `cron` and `status`."""
    interval = job.interval
    return {
        "name": job.name,
        "cmd": job.command,
        "type": job.type,
        "replica": job.replica,
        "user": job.meta.get("user"),
        "deps": job.deps,
        "interval": int(interval) if float(interval).is_integer() else interval,
        "last_time": _epoch(job.last_end or job.last_start),
        "run_flag": job.status not in NOT_RUNNING,
        "start_time": _epoch(job.last_start),
        "running": running,
        "group": job.meta.get("group"),
        "cron": job.cron,
        "status": job.status,
    }


class MeprocApi:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient) -> None:
        self.settings, self.client = settings, client

    def start(self) -> Response:
        body = request.get_json(silent=True, force=True)
        try:
            proc = ProcIn.model_validate(body if isinstance(body, dict) else {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return reply(400, f"{where}: {first.get('msg', 'invalid')}")
        if proc.type == "melang":
            return reply(400, MELANG)
        if proc.type not in ("once", "daemon", "cron"):
            return reply(400, f"type {proc.type!r} is not one of once, daemon, cron")
        s = self.settings
        self.client.job_create(spec_of(proc, identity.parse(s.run_users, s.run_groups)))
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
        name = self._name()
        if request.args.get("forget", "").lower() in ("1", "true", "yes"):
            self.client.job_delete(name)
        else:
            self.client.job_stop(name)
        return reply(200, "OK")

    def show(self) -> Response:
        jobs = self.client.job_list()
        stats: dict[str, dict[str, int | None]] = {}
        running, counts = [], {}
        for job in jobs:
            live = [t for t in job.tasks if t.executor and t.status == Status.RUNNING]
            counts[job.name] = len(live)
            running += [{"command": job.command, "pid": self._pid(t.executor, t.seed_id, stats),
                         "alias": t.alias, "task": t.id, "executor": t.executor}
                        for t in live]
        return reply(200, "OK", {"running": running,
                                 "tasks": {j.name: proc_of(j, counts[j.name]) for j in jobs}})

    def _pid(self, executor: str | None, task_id: str,
             stats: dict[str, dict[str, int | None]]) -> int | None:
        """The pid the executor last reported for the task's execute step (None until it
        reported one)."""
        if not executor:
            return None
        if executor not in stats:
            try:
                found = self.client.executor_stats(executor)
            except KhalaError:
                found = []
            # a pid reported while the task compiled is its compile step's (statistics are
            # written at most every half second: they may be older than the task's status)
            stats[executor] = {u.get("id", ""): u.get("pid")
                               for doc in found for u in doc.get("tasks", [])
                               if u.get("status") == Status.RUNNING}
        return stats[executor].get(task_id)
