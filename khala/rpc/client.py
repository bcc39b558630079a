"""The typed Judicator client: domain types in and out, one error convention for every call.

Every method returns the domain value on OK and raises the domain error of any other
ReturnCode (khala/errors.py, through convert.error_of): INVALID_INPUT → InvalidInput,
TOO_LARGE → TooLarge, NOT_EXIST → NotFound, CONFLICT → Conflict, ERROR (or an answer that
cannot be decoded) → RemoteError, an Unavailable naming the judicator that answered. No
judicator answering at all → Unavailable. The error's message is the reply's `detail` where it
has one, else the words given for the code here (`no task 'x'`), so a gateway shows it as is.

The transport (connections, order, failover) is a `Failover` (failover.py) this client holds;
`report` returns the address that answered in `Assignment.judicator`. khala/rpc/stub.py is the
same interface in memory, for tests of the callers.

A new method: a typed method here that converts its arguments (convert/), calls
`self._checked(name, ...)` and converts the reply; see docs/rpc.md.
"""

from __future__ import annotations

import logging
from typing import Any

from khala.discovery.base import Discovery
from khala.errors import InvalidInput, RemoteError
from khala.files.refs import FileRef
from khala.images.model import ImageInfo
from khala.jobs.model import JobSpec, JobView
from khala.model import (
    Assignment,
    Code,
    ExecutorInfo,
    Language,
    PageQuery,
    SearchQuery,
    SubmitOutcome,
    Task,
    TaskBrief,
)
from khala.problems.model import ProblemInfo, Rejudge
from khala.rpc import convert
from khala.rpc.auth import NodeAuth
from khala.rpc.failover import Failover

log = logging.getLogger(__name__)

#: Extra seconds a submit may take per task, beyond the client's timeout.
SUBMIT_SECONDS_PER_TASK = 0.05


class JudicatorClient:
    """`key`: an executor's name (rendezvous order, see failover.py), "" for a gateway;
    `auth`/`name`: node authentication (docs/security.md), None when it is off."""

    def __init__(self, discovery: Discovery, timeout: float = 30.0, key: str = "",
                 auth: NodeAuth | None = None, name: str = "") -> None:
        self._timeout = timeout
        self._rpc = Failover(discovery, timeout, key, auth, name)

    def close(self) -> None:
        self._rpc.close()

    # ------------------------------------------------------------------ the convention

    def _checked(self, method: str, *args: Any, words: dict[int, str] | None = None,
                 timeout: float | None = None, prefer: str | None = None) -> tuple[Any, str]:
        """(the OK reply, the address that answered); any other code raises its error."""
        reply, address = self._rpc.call(method, *args, timeout=timeout, prefer=prefer)
        code = reply if isinstance(reply, int) else reply.result
        if code != Code.OK:
            detail = getattr(reply, "detail", None) or (words or {}).get(code)
            if not detail:
                name = Code(code).name if code in set(Code) else f"code {code}"
                detail = f"{method}: judicator answered {name}"
            raise convert.error_of(code, detail, address)
        return reply, address

    @staticmethod
    def _task(wire: Any, method: str, address: str) -> Task:
        if wire is None:
            raise RemoteError(f"{method}: judicator at {address} sent no task", address)
        try:
            return convert.task_from_thrift(wire)
        except InvalidInput as exc:
            log.warning("judicator sent an undecodable task %s: %s", wire.id, exc)
            raise RemoteError(f"{method}: undecodable task from {address}: {exc}",
                              address) from exc

    # ------------------------------------------------------------------ seed calls

    def ping(self) -> None:
        self._checked("ping")

    def add(self, task: Task) -> str:
        """Submit a new task; returns the id the judicator gave it ("" if it sent none)."""
        reply, _ = self._checked("add", convert.task_to_thrift(task))
        return reply.id or ""

    def cancel(self, id: str) -> None:  # noqa: A002 - wire name
        self._checked("cancel", id)

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        """(pages, the page's task briefs)."""
        reply, _ = self._checked("search", *convert.search_to_wire(query))
        return reply.pages or 0, [convert.brief_from_thrift(b) for b in reply.tasks or []]

    def get(self, id: str) -> Task:  # noqa: A002
        reply, address = self._checked("get", id)
        return self._task(reply.task, "get", address)

    def executors(self) -> list[ExecutorInfo]:
        reply, _ = self._checked("executors")
        return [convert.executor_from_thrift(e) for e in reply.executors or []]

    def languages(self) -> list[Language]:
        """The language presets live executors have (judging), with versions and counts."""
        reply, _ = self._checked("languages")
        return [convert.language_from_thrift(x) for x in reply.languages or []]

    # ------------------------------------------------------------------ executor calls

    def report(
        self,
        executor: str,
        complete: list[Task],
        executing: list[TaskBrief],
        vacant: int,
        wait_ms: int = 0,
        languages: list[Language] | None = None,
        *,
        timeout: float | None = None,
        prefer: str | None = None,
        stats: dict[str, Any] | None = None,
        features: list[str] | None = None,
    ) -> Assignment:
        """An executor's heartbeat (docs/rpc.md). `complete` sends id, done, status, executor
        and result of each task; `executing` id, status and executor. The answer names the
        judicator that gave it (`judicator`); tasks that could not be decoded come back in
        `undecodable` rather than being lost. `languages`: the presets this executor has;
        `features`: what it can run beyond plain steps (khala.model.FEATURES)."""
        reply, address = self._checked(
            "report", executor,
            [convert.completed_to_thrift(t) for t in complete],
            [convert.executing_to_thrift(b) for b in executing],
            vacant, wait_ms, convert.stats_to_thrift(stats),
            [convert.language_to_thrift(lang) for lang in languages or []],
            list(features or []),
            timeout=timeout, prefer=prefer,
        )
        return convert.assignment_from_thrift(reply, address)

    def wake(self, executor: str, *, timeout: float | None = None,
             prefer: str | None = None) -> None:
        """End `executor`'s pending long-poll early (on `prefer`, where it is held)."""
        self._checked("wake", executor, False, timeout=timeout, prefer=prefer)

    def hand_in(self, executor: str, complete: list[Task], *,
                timeout: float | None = None) -> None:
        """Hand finished tasks in without a report (docs/rpc.md): each is recorded if
        `executor` still holds it, else dropped as late; either way it is handed in. Raises
        Unavailable when no judicator took them (an old judicator does not know the call)."""
        self._checked("hand_in", executor, [convert.completed_to_thrift(t) for t in complete],
                      timeout=timeout)

    def drain(self, executor: str, *, timeout: float | None = None) -> list[str]:
        """Tell every judicator that `executor` is draining: each ends its long-poll and
        assigns it nothing more. Returns the addresses that took it (judicators too old to
        know the flag just wake it)."""
        return self._rpc.call_each("wake", executor, True, timeout=timeout)

    def leave(self, executor: str, *, timeout: float | None = None) -> list[str]:
        """`executor` stops: every judicator forgets it (and its draining mark); what it still
        holds goes back to the queue. Returns the addresses that took it."""
        return self._rpc.call_each("leave", executor, timeout=timeout)

    # ------------------------------------------------------------------ API v2 calls

    def submit(self, tasks: list[Task]) -> list[SubmitOutcome]:
        """One outcome per task, in order (each with its own code: a batch refuses tasks one
        by one). Raises when the call as a whole failed."""
        replies, address = self._rpc.call(
            "submit", [convert.task_to_thrift(t) for t in tasks],
            timeout=self._timeout + SUBMIT_SECONDS_PER_TASK * len(tasks))
        if len(replies or []) != len(tasks):
            raise RemoteError(f"submit: judicator at {address} answered "
                              f"{len(replies or [])} outcomes for {len(tasks)} tasks", address)
        return [SubmitOutcome(int(r.result), r.id or "", bool(r.created), r.detail or "")
                for r in replies]

    def find(self, ref: str, wait: float = 0.0, lean: bool = False) -> Task:
        """The task a ref (key or 24-hex id) names; with `wait`, once it is done or `wait`
        seconds passed. `lean`: its cases' inputs and standards and its steps' standard
        outputs come empty (a caller that shows the task has no use for them, and each can
        be megabytes)."""
        reply, address = self._checked("find", ref, int(wait * 1000), lean,
                                       words={Code.NOT_EXIST: f"no task {ref!r}"},
                                       timeout=self._timeout + wait)
        return self._task(reply.task, "find", address)

    def page(self, query: PageQuery) -> tuple[list[TaskBrief], bool]:
        """One page of the task list, and whether more follow."""
        reply, _ = self._checked("list_tasks", convert.page_query_to_thrift(query),
                                 words={Code.INVALID_INPUT: "the list query was refused"})
        return [convert.brief_from_thrift(b) for b in reply.tasks or []], bool(reply.more)

    def signal(self, ref: str, signum: int) -> None:
        self._checked("send_signal", ref, signum, words={
            Code.INVALID_INPUT: f"unknown signal {signum}", Code.NOT_EXIST: f"no task {ref!r}",
            Code.CONFLICT: "the task is done"})

    def stop(self, ref: str) -> None:
        """Cancel the task; Conflict when it is done."""
        self._checked("stop", ref, words={Code.NOT_EXIST: f"no task {ref!r}",
                                          Code.CONFLICT: "the task is done"})

    def remove(self, ref: str) -> None:
        """Delete a done task; Conflict when it is not done."""
        self._checked("remove", ref, words={Code.NOT_EXIST: f"no task {ref!r}",
                                            Code.CONFLICT: "the task is not done"})

    def executor_stats(self, name: str = "") -> list[dict[str, Any]]:
        """The latest statistics of live executors, or of the one named."""
        reply, _ = self._checked("executor_stats", name,
                                 words={Code.NOT_EXIST: f"no live executor {name!r}"})
        return [convert.stats_from_thrift(s) for s in reply.executors or []]

    # ------------------------------------------------------------------ files

    def file_begin(self, ref: FileRef) -> str:
        """Start an upload of `ref`'s bytes: its id, or "" when the file is stored already."""
        reply, _ = self._checked("file_begin", ref.sha256, ref.size)
        return str(reply.upload or "")

    def file_put(self, upload: str, offset: int, data: bytes) -> None:
        self._checked("file_put", upload, offset, data,
                      words={Code.NOT_EXIST: f"no upload {upload!r}"})

    def file_end(self, upload: str) -> FileRef:
        reply, address = self._checked("file_end", upload,
                                       words={Code.NOT_EXIST: f"no upload {upload!r}"})
        try:
            return convert.file_ref_from_thrift(reply.file)
        except InvalidInput as exc:
            raise RemoteError(f"file_end: judicator at {address} answered {exc}",
                              address) from exc

    def file_read(self, sha256: str, offset: int, length: int) -> bytes:
        reply, _ = self._checked("file_read", sha256, offset, length,
                                 words={Code.NOT_EXIST: f"no file {sha256}"})
        return bytes(reply.data or b"")

    # ------------------------------------------------------------------ problems

    def _problem(self, reply: Any, method: str, address: str) -> ProblemInfo:
        if reply.problem is None:
            raise RemoteError(f"{method}: judicator at {address} sent no problem", address)
        return convert.problem_from_thrift(reply.problem)

    def problem_create(self, problem: str, title: str = "") -> ProblemInfo:
        """A new problem; Conflict when the id is taken."""
        reply, address = self._checked("problem_create", problem, title,
                                       words={Code.CONFLICT: f"problem {problem!r} exists"})
        return self._problem(reply, "problem_create", address)

    def problem_get(self, problem: str) -> ProblemInfo:
        reply, address = self._checked("problem_get", problem,
                                       words={Code.NOT_EXIST: f"no problem {problem!r}"})
        return self._problem(reply, "problem_get", address)

    def problem_list(self) -> list[ProblemInfo]:
        reply, _ = self._checked("problem_list")
        return [convert.problem_from_thrift(p) for p in reply.problems or []]

    def problem_version_add(self, problem: str, spec: bytes) -> tuple[int, ProblemInfo]:
        """Store a version given as its spec document (its files stored already): its number
        and the problem."""
        reply, address = self._checked("problem_version_add", problem, spec)
        return int(reply.version or 0), self._problem(reply, "problem_version_add", address)

    def problem_delete(self, problem: str, version: int = 0) -> None:
        """Delete a version (0: the problem); Conflict when tasks name it."""
        self._checked("problem_delete", problem, version,
                      words={Code.NOT_EXIST: f"no problem {problem!r} (version {version})"})

    def rejudge(self, spec: Rejudge) -> Rejudge:
        reply, address = self._checked("rejudge", convert.rejudge_to_thrift(spec),
                                       words={Code.NOT_EXIST: f"no problem {spec.problem!r}"})
        if not reply.rejudges:
            raise RemoteError(f"rejudge: judicator at {address} sent no rejudge", address)
        return convert.rejudge_from_thrift(reply.rejudges[0])

    def rejudges(self, problem: str = "", id: str = "") -> list[Rejudge]:  # noqa: A002
        """A problem's rejudges, or (`id`) one."""
        reply, _ = self._checked("rejudges", problem, id,
                                 words={Code.NOT_EXIST: f"no rejudge {id!r}" if id
                                        else f"no problem {problem!r}"})
        return [convert.rejudge_from_thrift(r) for r in reply.rejudges or []]

    # ------------------------------------------------------------------ images

    def image_add(self, name: str, file: FileRef, note: str = "") -> ImageInfo:
        """A new version of image `name` whose tar `file` is stored already."""
        reply, address = self._checked("image_add", name, convert.file_ref_to_thrift(file),
                                       note)
        if not reply.images:
            raise RemoteError(f"image_add: judicator at {address} sent no image", address)
        return convert.image_from_thrift(reply.images[0])

    def image_list(self, name: str = "") -> list[ImageInfo]:
        """Every image's versions (or `name`'s), by name then version."""
        reply, _ = self._checked("image_list", name)
        return [convert.image_from_thrift(i) for i in reply.images or []]

    def image_delete(self, name: str, version: int) -> None:
        """Delete one version of an image; NotFound when there is none."""
        self._checked("image_delete", name, version,
                      words={Code.NOT_EXIST: f"no image {name}:{version}"})

    # ------------------------------------------------------------------ jobs

    def _jobs(self, op: str, name: str = "", spec: JobSpec | None = None) -> Any:
        template = None if spec is None else convert.task_to_thrift(spec.template)
        job = None if spec is None else convert.spec_to_thrift(spec)
        reply, _ = self._checked("jobs", op, name, None, template, job,
                                 words={Code.NOT_EXIST: f"no job {name!r}"})
        return reply

    def job_create(self, spec: JobSpec) -> JobView:
        return self._job(self._jobs("create", spec.name, spec))

    def job_define(self, spec: JobSpec) -> JobView:
        """Create the job stopped: nothing runs until a restart. An older judicator answers
        INVALID_INPUT (unknown op)."""
        return self._job(self._jobs("define", spec.name, spec))

    def job_set_meta(self, name: str, spec: JobSpec) -> JobView:
        """Replace the job's meta with `spec.meta` (its runs and template stay)."""
        return self._job(self._jobs("meta", name, spec))

    def job_respec(self, name: str, spec: JobSpec, start: bool = True) -> JobView:
        """Replace the job's template and meta with `spec`'s; its runs stop as for a restart,
        then it starts again (`start`) or stays stopped."""
        return self._job(self._jobs("respec" if start else "redefine", name, spec))

    def job_list(self) -> list[JobView]:
        return [convert.job_from_thrift(j) for j in self._jobs("list").jobs or []]

    def job_get(self, name: str) -> JobView:
        return self._job(self._jobs("get", name))

    def job_inspect(self, name: str) -> JobView:
        """The job with its runs' task template (`template`)."""
        return self._job(self._jobs("inspect", name))

    def job_restart(self, name: str) -> JobView:
        return self._job(self._jobs("restart", name))

    def job_stop(self, name: str) -> JobView:
        """Stops the job's runs and keeps it, stopped, until a restart or a delete. An older
        judicator answers INVALID_INPUT (unknown op)."""
        return self._job(self._jobs("stop", name))

    def job_delete(self, name: str) -> JobView | None:
        """The job while it stops its runs; None when it is gone already."""
        reply = self._jobs("delete", name)
        return None if reply.job is None else convert.job_from_thrift(reply.job)

    @staticmethod
    def _job(reply: Any) -> JobView:
        if reply.job is None:
            raise RemoteError("jobs: the judicator sent no job")
        return convert.job_from_thrift(reply.job)
