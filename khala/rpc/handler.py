"""The Judicator Thrift handler: wire structs in, one domain call, wire structs out.

thriftpy2's processor calls these methods with the decoded arguments in IDL order (null for what
an old client does not send). Each converts its arguments (convert/), calls the judicator's
domain API (`service`, and its `tasks`, `jobs` and `ops` parts) and turns the outcome into the
wire answer, the same way for every method (`_answers`):

- a value → the reply with result OK;
- a refusal the domain raises (convert.REFUSALS: InvalidInput, TooLarge, NotFound, Conflict) →
  its ReturnCode, the reply's other fields null/empty (and its `detail`, where it has one);
- Unavailable (the store down, a record held) → ERROR with a one-line warning; anything else (a
  bug) → ERROR with its traceback. One failing call never breaks the connection.

`ping` and `wake` cannot fail and answer OK. A new method: one method here with
`@_answers(<its reply carrying a code and no payload>)`; see docs/rpc.md.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from khala.errors import InvalidInput, Unavailable
from khala.model import Code
from khala.rpc import convert
from khala.rpc import judicator_thrift as T

log = logging.getLogger(__name__)

#: A method's reply carrying a result code and no payload: `empty(code, detail)`.
Empty = Callable[[int, str], Any]


def _answers(empty: Empty) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any) -> Any:
            try:
                return method(*args)
            except convert.REFUSALS as exc:
                log.info("%s refused: %s", method.__name__, exc)
                return empty(exc.code, str(exc))
            except Unavailable as exc:  # the store down or a record held: expected, no trace
                log.warning("judicator %s: %s; the caller tries again", method.__name__, exc)
                return empty(Code.ERROR, str(exc))
            except Exception:
                log.exception("judicator %s failed", method.__name__)
                return empty(Code.ERROR, "internal error")

        return wrapper

    return decorate


def _code(code: int, _detail: str) -> int:
    return code


class JudicatorHandler:
    """The object thriftpy2's processor serves: one method per IDL method. `service` is the
    judicator's domain API (khala.judicator.service.JudicatorService)."""

    def __init__(self, service: Any, max_task: int = convert.MAX_TEXT,
                 max_report: int = convert.MAX_TEXT) -> None:
        self.service = service
        self.max_task = max_task  # bytes the texts of one added task may inflate to, together
        self.max_report = max_report  # bytes the results of one report may inflate to, together

    # ------------------------------------------------------------------ seed calls

    def ping(self) -> int:
        self.service.ping()
        return Code.OK

    @_answers(lambda code, _: T.AddReturn(result=code, id=None))
    def add(self, task: Any) -> Any:
        task_id = self.service.add(convert.task_from_thrift(task, self.max_task))
        return T.AddReturn(result=Code.OK, id=task_id)

    @_answers(_code)
    def cancel(self, id: str) -> int:  # noqa: A002 - wire name
        self.service.cancel(id)
        return Code.OK

    @_answers(lambda code, _: T.SearchReturn(result=code, pages=0, tasks=[]))
    def search(self, id: str | None, user: int | None,  # noqa: A002
               start_time: str | None, end_time: str | None, old_to_new: bool | None,
               limit: int | None, page: int | None) -> Any:
        query = convert.search_from_wire(id, user, start_time, end_time, old_to_new, limit, page)
        pages, briefs = self.service.search(query)
        return T.SearchReturn(result=Code.OK, pages=pages,
                              tasks=[convert.brief_to_thrift(b) for b in briefs])

    @_answers(lambda code, _: T.GetReturn(result=code, task=None))
    def get(self, id: str) -> Any:  # noqa: A002
        return T.GetReturn(result=Code.OK, task=convert.task_to_thrift(self.service.get(id)))

    @_answers(lambda code, _: T.ExecutorsReturn(result=code, executors=[]))
    def executors(self) -> Any:
        infos = self.service.executors()
        return T.ExecutorsReturn(result=Code.OK,
                                 executors=[convert.executor_to_thrift(i) for i in infos])

    @_answers(lambda code, _: T.LanguagesReturn(result=code, languages=[]))
    def languages(self) -> Any:
        found = self.service.languages()
        return T.LanguagesReturn(result=Code.OK,
                                 languages=[convert.language_to_thrift(x) for x in found])

    # ------------------------------------------------------------------ executor calls

    @_answers(lambda code, _: T.ReportReturn(result=code, cancel=[], assign=[]))
    def report(self, executor: str | None, complete: list[Any] | None,
               executing: list[Any] | None, vacant: int | None, wait_ms: int | None = None,
               stats: Any = None, languages: list[Any] | None = None,
               features: list[Any] | None = None) -> Any:
        self._record_stats(executor, stats)
        budget = convert.Inflation(self.max_report)  # shared by every result in this report
        finished = [convert.completed_from_thrift(t, budget) for t in complete or []
                    if t is not None and t.id]
        running = [convert.brief_from_thrift(b) for b in executing or [] if b is not None and b.id]
        offered = [convert.language_from_thrift(x) for x in languages or [] if x is not None]
        can = frozenset(x for x in features or [] if isinstance(x, str))
        assignment = self.service.report(executor or "", finished, running, vacant or 0,
                                         wait_ms or 0, offered, can)
        return convert.assignment_to_thrift(assignment)

    def _record_stats(self, executor: str | None, stats: Any) -> None:
        """The statistics a report carried (never fails the report)."""
        if stats is None or not executor:
            return
        try:
            self.service.ops.record_stats(executor, convert.stats_from_thrift(stats))
        except Exception:
            log.warning("could not keep the statistics of %s", executor, exc_info=True)

    def wake(self, executor: str | None, draining: bool | None = None) -> int:
        self.service.wake(executor or "", bool(draining))
        return Code.OK

    @_answers(_code)
    def leave(self, executor: str | None) -> int:
        self.service.leave(executor or "")
        return Code.OK

    @_answers(_code)
    def hand_in(self, executor: str | None, complete: list[Any] | None) -> int:
        budget = convert.Inflation(self.max_report)  # as a report's results
        finished = [convert.completed_from_thrift(t, budget) for t in complete or []
                    if t is not None and t.id]
        self.service.hand_in(executor or "", finished)
        return Code.OK

    @_answers(lambda code, _: T.StatsReturn(result=code, executors=[]))
    def executor_stats(self, name: str | None) -> Any:
        found = self.service.ops.executor_stats(name or "")
        return T.StatsReturn(result=Code.OK, executors=[convert.stats_to_thrift(s) for s in found])

    # ------------------------------------------------------------------ API v2 calls

    @_answers(lambda code, _: [])
    def submit(self, tasks: list[Any] | None) -> list[Any]:
        """One SubmitReturn per task: a task that cannot be decoded is refused alone."""
        decoded: list[Any] = []
        for wire in tasks or []:
            try:
                decoded.append(convert.task_from_thrift(wire, self.max_task))
            except InvalidInput as exc:
                decoded.append(exc)
        outcomes = iter(self.service.tasks.submit(
            [t for t in decoded if not isinstance(t, Exception)]))
        answers = []
        for item in decoded:
            if isinstance(item, Exception):
                answers.append(T.SubmitReturn(convert.code_of(item), "", False, str(item)))
            else:
                o = next(outcomes)
                answers.append(T.SubmitReturn(o.code, o.id, o.created, o.detail))
        return answers

    @_answers(lambda code, _: T.GetReturn(result=code, task=None))
    def find(self, ref: str | None, wait_ms: int | None, lean: bool | None = None) -> Any:
        task = self.service.tasks.find(ref or "", max(0, wait_ms or 0) / 1000.0, bool(lean))
        return T.GetReturn(result=Code.OK, task=convert.task_to_thrift(task, bool(lean)))

    @_answers(lambda code, _: T.PageReturn(result=code, tasks=[], more=False))
    def list_tasks(self, query: Any) -> Any:
        briefs, more = self.service.tasks.page(convert.page_query_from_thrift(query))
        return T.PageReturn(result=Code.OK, tasks=[convert.brief_to_thrift(b) for b in briefs],
                            more=more)

    @_answers(_code)
    def send_signal(self, ref: str | None, signum: int | None) -> int:
        self.service.tasks.signal(ref or "", signum if signum is not None else -1)
        return Code.OK

    @_answers(_code)
    def stop(self, ref: str | None) -> int:
        self.service.tasks.stop(ref or "")
        return Code.OK

    @_answers(_code)
    def remove(self, ref: str | None) -> int:
        self.service.tasks.remove(ref or "")
        return Code.OK

    # ------------------------------------------------------------------ files

    @_answers(lambda code, detail: T.UploadReturn(result=code, detail=detail, upload=None))
    def file_begin(self, sha256: str | None, size: int | None) -> Any:
        upload = self.service.files.begin(sha256 or "", size if size is not None else -1)
        return T.UploadReturn(result=Code.OK, detail="", upload=upload)

    @_answers(lambda code, detail: T.Answer(result=code, detail=detail))
    def file_put(self, upload: str | None, offset: int | None, data: bytes | None) -> Any:
        self.service.files.put(upload or "", offset if offset is not None else -1,
                               convert.raw_bytes(data))
        return T.Answer(result=Code.OK, detail="")

    @_answers(lambda code, detail: T.FileReturn(result=code, detail=detail, file=None))
    def file_end(self, upload: str | None) -> Any:
        ref = self.service.files.end(upload or "")
        return T.FileReturn(result=Code.OK, detail="", file=convert.file_ref_to_thrift(ref))

    @_answers(lambda code, detail: T.ReadReturn(result=code, detail=detail, data=None))
    def file_read(self, sha256: str | None, offset: int | None, length: int | None) -> Any:
        data = self.service.files.read(sha256 or "", offset or 0, length or 0)
        return T.ReadReturn(result=Code.OK, detail="", data=data)

    # ------------------------------------------------------------------ problems

    @_answers(lambda code, detail: T.ProblemReturn(result=code, detail=detail))
    def problem_create(self, id: str | None, title: str | None) -> Any:  # noqa: A002
        info = self.service.problems.create(id or "", title or "")
        return T.ProblemReturn(result=Code.OK, detail="",
                               problem=convert.problem_to_thrift(info))

    @_answers(lambda code, detail: T.ProblemReturn(result=code, detail=detail))
    def problem_get(self, id: str | None) -> Any:  # noqa: A002
        info = self.service.problems.get(id or "")
        return T.ProblemReturn(result=Code.OK, detail="",
                               problem=convert.problem_to_thrift(info))

    @_answers(lambda code, detail: T.ProblemReturn(result=code, detail=detail))
    def problem_list(self) -> Any:
        found = self.service.problems.all()
        return T.ProblemReturn(result=Code.OK, detail="",
                               problems=[convert.problem_to_thrift(p) for p in found])

    @_answers(lambda code, detail: T.ProblemReturn(result=code, detail=detail))
    def problem_version_add(self, id: str | None, spec: bytes | None) -> Any:  # noqa: A002
        number = self.service.problems.add_version(id or "", convert.raw_bytes(spec))
        info = self.service.problems.get(id or "")
        return T.ProblemReturn(result=Code.OK, detail="", version=number,
                               problem=convert.problem_to_thrift(info))

    @_answers(lambda code, detail: T.Answer(result=code, detail=detail))
    def problem_delete(self, id: str | None, version: int | None) -> Any:  # noqa: A002
        self.service.problems.delete(id or "", version or 0)
        return T.Answer(result=Code.OK, detail="")

    @_answers(lambda code, detail: T.RejudgeReturn(result=code, detail=detail, rejudges=[]))
    def rejudge(self, spec: Any) -> Any:
        made = self.service.rejudges.create(convert.rejudge_from_thrift(spec))
        return T.RejudgeReturn(result=Code.OK, detail="",
                               rejudges=[convert.rejudge_to_thrift(made)])

    @_answers(lambda code, detail: T.RejudgeReturn(result=code, detail=detail, rejudges=[]))
    def rejudges(self, problem: str | None, id: str | None) -> Any:  # noqa: A002
        api = self.service.rejudges
        found = [api.get(id)] if id else api.of(problem or "")
        return T.RejudgeReturn(result=Code.OK, detail="",
                               rejudges=[convert.rejudge_to_thrift(r) for r in found])

    # ------------------------------------------------------------------ images

    @_answers(lambda code, detail: T.ImageReturn(result=code, detail=detail, images=[]))
    def image_add(self, name: str | None, file: Any, note: str | None) -> Any:
        info = self.service.images.add(name or "", convert.file_ref_from_thrift(file, "image"),
                                       note or "")
        return T.ImageReturn(result=Code.OK, detail="", images=[convert.image_to_thrift(info)])

    @_answers(lambda code, detail: T.ImageReturn(result=code, detail=detail, images=[]))
    def image_list(self, name: str | None) -> Any:
        found = self.service.images.list(name or "")
        return T.ImageReturn(result=Code.OK, detail="",
                             images=[convert.image_to_thrift(i) for i in found])

    @_answers(lambda code, detail: T.Answer(result=code, detail=detail))
    def image_delete(self, name: str | None, version: int | None) -> Any:
        self.service.images.delete(name or "", version or 0)
        return T.Answer(result=Code.OK, detail="")

    # ------------------------------------------------------------------ jobs

    @_answers(lambda code, detail: T.JobReturn(result=code, data="null", detail=detail))
    def jobs(self, op: str | None, name: str | None, spec: str | None, template: Any,
             job: Any = None) -> Any:
        api, name = self.service.jobs, name or ""
        if op in ("create", "define"):
            made = (convert.spec_from_thrift(job, template, self.max_task) if job is not None
                    else convert.spec_from_json(spec or "", template, self.max_task))
            return convert.job_answer(api.create(made, stopped=op == "define"))
        if op in ("respec", "redefine"):
            if job is None:
                raise InvalidInput(f"jobs {op} needs the job (5) and its template (4)")
            made = convert.spec_from_thrift(job, template, self.max_task)
            return convert.job_answer(api.respec(name, made, start=op == "respec"))
        if op == "meta":
            if job is None:
                raise InvalidInput("jobs meta needs the job (5), whose meta is taken")
            return convert.job_answer(api.set_meta(name, dict(job.meta or {})))
        if op == "list":
            return convert.jobs_answer(api.list())
        if op == "inspect":
            return convert.job_answer(api.get(name, template=True), name)
        if op in ("get", "restart", "stop", "delete"):
            return convert.job_answer(getattr(api, op)(name), name)
        raise InvalidInput(f"unknown jobs op {op!r}")
