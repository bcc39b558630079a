"""Jobs on the wire (docs/jobs.md): a JobSpec with its task template beside it, and the Job a
client sees. Gateways that predate the typed structs send the spec as JSON (`jobs` argument 3)
and read the answer's JSON (`data`): `spec_from_json` and `answer_json` keep serving them."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from khala.errors import InvalidInput
from khala.jobs.model import JobRun, JobSpec, JobView
from khala.model import Code
from khala.rpc import judicator_thrift as T
from khala.rpc.convert.tasks import task_from_thrift, task_to_thrift
from khala.rpc.convert.text import MAX_TEXT

#: The fields of a job's spec besides its template (those the JSON form of older gateways has).
SPEC_FIELDS = tuple(f.name for f in fields(JobSpec) if f.name != "template")


def spec_to_thrift(spec: JobSpec | JobView) -> Any:
    """The spec fields of a JobSpec (its template travels on its own) or of a JobView."""
    return T.JobSpec(name=spec.name, type=spec.type, replica=spec.replica, cron=spec.cron,
                     interval=float(spec.interval), deps=list(spec.deps),
                     retry_attempts=spec.retry_attempts,
                     retry_backoff=float(spec.retry_backoff),
                     meta={str(k): str(v) for k, v in spec.meta.items() if v is not None})


def _spec_fields(job: Any) -> dict[str, Any]:
    return {"name": job.name or "", "type": job.type or "",
            "replica": job.replica if job.replica is not None else 1,
            "cron": job.cron if job.cron is not None else JobSpec.cron,
            "interval": job.interval if job.interval is not None else JobSpec.interval,
            "deps": list(job.deps or []), "retry_attempts": job.retry_attempts or 0,
            "retry_backoff": (job.retry_backoff if job.retry_backoff is not None
                              else JobSpec.retry_backoff),
            "meta": dict(job.meta or {})}


def spec_from_thrift(job: Any, template: Any, max_text: int = MAX_TEXT) -> JobSpec:
    """Raises InvalidInput for a job without a template or with one that cannot be decoded."""
    if template is None:
        raise InvalidInput("a job needs a task template")
    return JobSpec(template=task_from_thrift(template, max_text), **_spec_fields(job))


def spec_from_json(spec: str, template: Any, max_text: int = MAX_TEXT) -> JobSpec:
    """The spec as older gateways send it. Raises InvalidInput for what cannot be a job."""
    try:
        doc = json.loads(spec or "{}")
    except ValueError as exc:
        raise InvalidInput("the job is not JSON") from exc
    if not isinstance(doc, dict) or set(doc) - set(SPEC_FIELDS):
        raise InvalidInput(f"a job has the fields {sorted(SPEC_FIELDS)}")
    if template is None:
        raise InvalidInput("a job needs a task template")
    try:
        return JobSpec(template=task_from_thrift(template, max_text), **doc)
    except TypeError as exc:  # a field missing
        raise InvalidInput(f"a job has the fields {sorted(SPEC_FIELDS)}: {exc}") from exc


def job_to_thrift(view: JobView) -> Any:
    return T.Job(
        spec=spec_to_thrift(view), user=view.user, priority=view.priority,
        command=view.command, status=view.status, generation=view.generation,
        created=view.created,
        tasks=[T.JobRun(id=r.id, seed_id=r.seed_id, run_alias=r.alias, executor=r.executor,
                        status=r.status) for r in view.tasks],
        last_start=view.last_start, last_end=view.last_end, blocked=view.blocked,
        template=None if view.template is None else task_to_thrift(view.template))


def job_from_thrift(job: Any, max_text: int = MAX_TEXT) -> JobView:
    return JobView(
        **_spec_fields(job.spec or T.JobSpec()), user=job.user or 0,
        priority=job.priority or 0, command=job.command or "", status=job.status or "",
        generation=job.generation or 0, created=job.created or "",
        tasks=[JobRun(id=r.id or "", seed_id=r.seed_id or "", alias=r.run_alias or "",
                      executor=r.executor or None, status=r.status or 0)
               for r in job.tasks or [] if r is not None],
        last_start=job.last_start or None, last_end=job.last_end or None,
        blocked=job.blocked or None,
        template=None if job.template is None else task_from_thrift(job.template, max_text))


def _json(view: JobView) -> dict[str, Any]:
    """A job as the `data` JSON of older gateways."""
    return {
        "name": view.name, "type": view.type, "replica": view.replica, "cron": view.cron,
        "interval": view.interval, "deps": list(view.deps),
        "retry": {"attempts": view.retry_attempts, "backoff": view.retry_backoff},
        "user": view.user, "priority": view.priority, "command": view.command,
        "meta": dict(view.meta), "status": view.status, "generation": view.generation,
        "created": view.created,
        "tasks": [{"id": r.id, "seed_id": r.seed_id, "alias": r.alias, "executor": r.executor,
                   "status": r.status} for r in view.tasks],
        "last_start": view.last_start, "last_end": view.last_end, "blocked": view.blocked,
    }


def job_answer(view: JobView | None, name: str = "") -> Any:
    """The OK answer with one job (None: `name` was deleted already)."""
    data = {"name": name} if view is None else _json(view)
    return T.JobReturn(result=Code.OK, data=json.dumps(data), detail="",
                       job=None if view is None else job_to_thrift(view))


def jobs_answer(views: list[JobView]) -> Any:
    return T.JobReturn(result=Code.OK, data=json.dumps([_json(v) for v in views]), detail="",
                       jobs=[job_to_thrift(v) for v in views])
