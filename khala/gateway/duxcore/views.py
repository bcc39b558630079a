"""The Duxcore routes (seed 001) over Khala's jobs and images (docs/duxcore.md). Each view is a
few judicator calls; what a service is, is in spec.py; its documents in inspect.py and stats.py.

    POST   /service                {type: "raw", params}   create, stopped          201
    POST   /service/<id>/ctl       {op}                    start|stop|restart|kill  204
    GET    /service/<id>/stats                             Docker's stats document
    GET    /service/<id>                                   Docker's inspect document
    DELETE /service/<id>                                   the service, its runs and files
    PATCH  /service/<id>/env       {NAME: value}           applied at the next start
    PUT    /service/<id>/bind      a .tar body             the bind contents (an addition)
    POST   /docker/image           a .tar body             {image_id}
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal as _signal
from typing import Any

from flask import Response, jsonify, request
from pydantic import ValidationError

from khala import model
from khala.config import GatewaySettings
from khala.errors import Conflict, KhalaError, NotFound
from khala.gateway import auth
from khala.gateway.duxcore.bind import tar_to_zip
from khala.gateway.duxcore.errors import DuxError
from khala.gateway.duxcore.inspect import HALTED, inspect_document
from khala.gateway.duxcore.spec import (
    RawConfig,
    Record,
    check_env_patch,
    check_params,
    job_name,
    record_of,
    spec_of,
)
from khala.gateway.duxcore.stats import stats_document
from khala.gateway.v2.bodies import spooled_body
from khala.images.upload import import_tar
from khala.jobs.model import JobSpec, JobView
from khala.model import PageQuery, Status, Task
from khala.rpc.client import JudicatorClient

OPS = ("start", "stop", "restart", "kill")
IMAGE_NAME = "duxcore"  # POST /docker/image's image name unless ?name= gives one
END_WAIT = 30.0  # seconds DELETE waits for a killed run to be over, then removes it
MAX_RUNS = 1000  # runs of one service DELETE removes per call (a page of the task list)


def _empty(status: int) -> Response:
    return Response(status=status)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


class ServiceViews:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient) -> None:
        self.settings, self.client = settings, client

    # ------------------------------------------------------------------ lookups

    def _service(self, service_id: str) -> tuple[JobView, Record]:
        try:
            job = self.client.job_get(job_name(service_id))
        except NotFound:
            raise DuxError(404, f"no such service: {service_id}") from None
        record = record_of(job.meta)
        if record is None or record.id != service_id or job.status == "deleting":
            raise DuxError(404, f"no such service: {service_id}")
        return job, record

    def _user(self) -> int:
        who = auth.principal()
        return 0 if who is None else who.user

    def _latest_run(self, job: JobView) -> Task | None:
        """The service's current run, else its latest one (None: it never ran)."""
        ref = next((r.seed_id for r in job.tasks), None)
        if ref is None:
            briefs, _ = self.client.page(PageQuery(key_prefix=job.name + ".", limit=1))
            ref = briefs[0].id if briefs else None
        if ref is None:
            return None
        try:
            return self.client.find(ref)
        except NotFound:
            return None

    def _usage(self, run: Task | None) -> tuple[dict[str, Any] | None, str]:
        """The usage its executor last reported of the running step of `run`, and when."""
        if run is None or run.done or run.status != Status.RUNNING or not run.executor:
            return None, model.now()
        try:
            found = self.client.executor_stats(run.executor)
        except KhalaError:
            return None, model.now()
        for doc in found:
            for usage in doc.get("tasks", []):
                if usage.get("id") == run.id and usage.get("status") == Status.RUNNING:
                    return usage, str(doc.get("report_time") or model.now())
        return None, model.now()

    # ------------------------------------------------------------------ routes

    def create(self) -> Response:
        body = request.get_json(silent=True, force=True)
        try:
            config = RawConfig.model_validate(body if isinstance(body, dict) else {})
        except ValidationError as exc:
            raise DuxError(400, _first_error(exc)) from exc
        if config.type != "raw":
            raise DuxError(400, f"type {config.type!r}: Khala creates services of type raw")
        check_params(config.params, self.settings)
        record = Record(id=config.params.id, params=config.params.model_dump(),
                        created=model.now())
        try:
            self.client.job_define(spec_of(record, self.settings, self._user(), b""))
        except Conflict:
            raise DuxError(409, f"a service with the id {record.id!r} exists (or is being "
                           "deleted)") from None
        return _empty(201)

    def get(self, id: str) -> Response:  # noqa: A002 - route name
        job, record = self._service(id)
        run = self._latest_run(job)
        usage, _ = self._usage(run)
        return jsonify(inspect_document(record, job, run, (usage or {}).get("pid")))

    def stats(self, id: str) -> Response:  # noqa: A002
        job, record = self._service(id)
        usage, read = self._usage(self._latest_run(job))
        return jsonify(stats_document(id, (usage or {}).get("counters"), read))

    def ctl(self, id: str) -> Response:  # noqa: A002
        body = request.get_json(silent=True, force=True)
        op = body.get("op") if isinstance(body, dict) else None
        if op not in OPS:
            raise DuxError(400, f"op must be one of {', '.join(OPS)}")
        job, record = self._service(id)
        if op == "start" and job.status not in HALTED:
            return _empty(204)  # running, or its start is under way: as Docker, nothing to do
        if op in ("start", "restart"):
            self._launch(job, record)
        elif op == "stop":
            self.client.job_stop(job.name)
        else:  # SIGKILL first (a stop would SIGTERM them), then stopped: none starts again
            self._kill(job)
            self._kill(self.client.job_stop(job.name))
        return _empty(204)

    def _launch(self, job: JobView, record: Record) -> None:
        """Start (or restart) the service's job; with the pending environment when it
        changed (a new template: respec)."""
        if record.pending_env == record.env:
            self.client.job_restart(job.name)
            return
        record = dataclasses.replace(record, env=dict(record.pending_env))
        self._respec(job, record, self._data(job), start=True)

    def _data(self, job: JobView) -> bytes:
        template = self.client.job_inspect(job.name).template
        return b"" if template is None else template.execute.data

    def _respec(self, job: JobView, record: Record, data: bytes, start: bool) -> None:
        spec = spec_of(record, self.settings, job.user, data)
        self.client.job_respec(job.name, spec, start=start)

    def _kill(self, job: JobView) -> None:
        """SIGKILL to the job's running (or ending) runs."""
        for run in job.tasks:
            try:
                self.client.signal(run.seed_id, int(_signal.SIGKILL))
            except (NotFound, Conflict):
                pass  # over already

    def env(self, id: str) -> Response:  # noqa: A002
        job, record = self._service(id)
        env = check_env_patch(request.get_json(silent=True, force=True), self.settings)
        record = dataclasses.replace(record, pending_env=env)
        self.client.job_set_meta(job.name, JobSpec(name=job.name, type=job.type,
                                                   template=Task(), meta=record.meta()))
        return _empty(204)

    def bind(self, id: str) -> Response:  # noqa: A002
        job, record = self._service(id)
        if job.status not in HALTED:
            raise DuxError(409, f"service {id} is running: stop it, then put its bind "
                           "contents (they are its runs' files from its next start)")
        s = self.settings
        with spooled_body(s.max_task_size * 4, "max_task_size", " (a .tar archive)") as fh:
            data, files = tar_to_zip(fh, min(s.zip_max_bytes, s.max_task_size * 4),
                                     s.zip_max_files)
        if len(data) > s.max_task_size:
            raise DuxError(413, f"the bind contents take {len(data)} bytes as a zip, more "
                           f"than a task may hold ({s.max_task_size}, max_task_size)")
        record = dataclasses.replace(record, bind={
            "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "files": files})
        self._respec(job, record, data, start=False)
        return _empty(204)

    def delete(self, id: str) -> Response:  # noqa: A002
        job, _ = self._service(id)
        self._kill(job)
        try:
            ending = self.client.job_delete(job.name)
        except Conflict:
            ending = None  # being deleted already: its runs are ending
        if ending is not None:
            self._kill(ending)
        self._remove_runs(job.name)
        return _empty(204)

    def _remove_runs(self, name: str) -> None:
        """Remove every run's task (its files with it: the bind contents it carried); a run
        still ending is waited for first (it was killed)."""
        briefs, _ = self.client.page(PageQuery(key_prefix=name + ".", limit=MAX_RUNS))
        for brief in briefs:
            try:
                if not brief.done:
                    self.client.find(brief.id, wait=END_WAIT)
                self.client.remove(brief.id)
            except NotFound:
                continue
            except Conflict:
                raise DuxError(409, f"a run of service {name} did not end within "
                               f"{END_WAIT:g} s; delete again") from None

    def image(self) -> Response:
        name = request.args.get("name", IMAGE_NAME)
        limit = self.settings.max_image_size
        with spooled_body(limit, "max_image_size", " (a .tar of a root filesystem)") as fh:
            info = import_tar(self.client, name, fh, limit, "POST /docker/image")
        return jsonify({"image_id": f"{info.name}:{info.version}"})
