"""The Thrift side of the jobs method: `jobs(op, name, spec, template)` → the
judicator's JobApi (khala/judicator/jobs.py). The job travels as JSON beside its task
template (a Task struct); the answer's data is JSON. Mixed into the judicator's handler."""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from typing import Any

from khala.errors import InvalidInput
from khala.jobs.model import JobSpec
from khala.model import Code
from khala.rpc import convert
from khala.rpc import judicator_thrift as T

log = logging.getLogger(__name__)
SPEC_FIELDS = frozenset(f.name for f in fields(JobSpec)) - {"template"}


def spec_from_wire(spec: str, template: Any) -> JobSpec:
    """Raises InvalidInput for what cannot be a job."""
    try:
        doc = json.loads(spec or "{}")
    except ValueError as exc:
        raise InvalidInput("the job is not JSON") from exc
    if not isinstance(doc, dict) or set(doc) - SPEC_FIELDS:
        raise InvalidInput(f"a job has the fields {sorted(SPEC_FIELDS)}")
    if template is None:
        raise InvalidInput("a job needs a task template")
    return JobSpec(template=convert.task_from_thrift(template), **doc)


def _answer(code: int, data: Any = None, detail: str = "") -> Any:
    return T.JobReturn(result=int(code), data=json.dumps(data), detail=detail)


class JobsHandler:
    service: Any  # the judicator's service; .jobs is its khala.judicator.jobs.JobApi

    def jobs(self, op: str | None, name: str | None, spec: str | None, template: Any) -> Any:
        api = self.service.jobs
        try:
            if op == "create":
                code, data = api.create(spec_from_wire(spec or "", template))
            elif op == "list":
                code, data = Code.OK, api.list()
            elif op in ("get", "restart", "delete"):
                code, data = getattr(api, op)(name or "")
            else:
                return _answer(Code.INVALID_INPUT, detail=f"unknown jobs op {op!r}")
        except (InvalidInput, TypeError, ValueError) as exc:
            return _answer(Code.INVALID_INPUT, detail=str(exc))
        except Exception:
            log.exception("judicator jobs %s failed", op)
            return _answer(Code.ERROR, detail="internal error")
        detail = {Code.NOT_EXIST: f"no job {name or ''!r}",
                  Code.CONFLICT: "a job has this name" if op == "create"
                  else "the job is being deleted"}.get(Code(code), "")
        return _answer(code, data, detail)
