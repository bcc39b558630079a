"""The jobs calls of the typed JudicatorClient, mixed into it: each answers
(code, data, detail) with data the decoded JSON (a job, or a list of jobs)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from khala.jobs.model import JobSpec
from khala.rpc import convert

JobAnswer = tuple[int, Any, str]


class JobCalls:
    def _v2(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError  # TaskCalls'

    def _jobs(self, op: str, name: str = "", spec: str = "", template: Any = None) -> JobAnswer:
        reply = self._v2("jobs", op, name, spec, template)
        try:
            data = json.loads(reply.data) if reply.data else None
        except ValueError:
            data = None
        return int(reply.result), data, reply.detail or ""

    def job_create(self, spec: JobSpec) -> JobAnswer:
        doc = asdict(spec)
        doc.pop("template")
        return self._jobs("create", spec.name, json.dumps(doc),
                          convert.task_to_thrift(spec.template))

    def job_list(self) -> JobAnswer:
        return self._jobs("list")

    def job_get(self, name: str) -> JobAnswer:
        return self._jobs("get", name)

    def job_restart(self, name: str) -> JobAnswer:
        return self._jobs("restart", name)

    def job_delete(self, name: str) -> JobAnswer:
        return self._jobs("delete", name)
