"""JudicatorClient's interface in memory, for tests of its callers without a cluster (as
dramatiq's StubBroker stands in for a broker).

`StubJudicator` keeps tasks and jobs in dicts and answers every call as a judicator would,
through the same error convention (khala/errors.py): it checks what a judicator checks (the
limits policy, job specs, ids, keys, states) and raises the refusals the real client raises.
Nothing runs: an executor's `report` is given the queued tasks, or a test ends a task with
`finish`. `fail`, when set, is raised by every call (a judicator's refusal, Unavailable).
tests/rpc/test_stub.py holds it to JudicatorClient's methods and signatures.
"""

from __future__ import annotations

import dataclasses
import signal as _signal
from typing import Any

from khala import model
from khala.config import LimitSettings
from khala.errors import Conflict, InvalidInput, KhalaError, NotFound
from khala.files.refs import FileRef
from khala.images.model import ImageInfo
from khala.jobs.model import JobSpec, JobView
from khala.jobs.validate import validate_spec
from khala.model import (
    FEATURE_IMAGES,
    MAX_PAGE,
    Assignment,
    Code,
    ExecutorInfo,
    Language,
    PageQuery,
    Result,
    SearchQuery,
    Status,
    SubmitOutcome,
    Task,
    TaskBrief,
)
from khala.problems.model import ProblemInfo, Rejudge
from khala.rpc import convert
from khala.rpc.stub_files import StubFiles, StubImages
from khala.rpc.stub_problems import StubProblems
from khala.rules.limits import validate_task

SIGNALS = frozenset(int(s) for s in _signal.Signals)


class StubJudicator(StubFiles, StubImages, StubProblems):
    def __init__(self, policy: LimitSettings | None = None) -> None:
        self.policy = policy or LimitSettings()
        self.files: dict[str, bytes] = {}  # stored files by sha256
        self.uploads: dict[str, tuple[FileRef, dict[int, bytes]]] = {}
        self.problems: dict[str, ProblemInfo] = {}
        self.images: list[ImageInfo] = []
        self.rejudge_list: list[Rejudge] = []
        self.tasks: dict[str, Task] = {}  # by id, in the order added
        self.keys: dict[str, str] = {}  # key → id
        self.jobs: dict[str, JobView] = {}
        self.job_templates: dict[str, Task] = {}
        self.signals: list[tuple[str, int]] = []  # queued for running steps, in order
        self.executor_list: list[ExecutorInfo] = []
        self.stats: list[dict[str, Any]] = []  # the live executors' statistics
        self.language_list: list[Language] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: KhalaError | None = None

    def _called(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        if self.fail is not None:
            raise self.fail

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ test helpers

    def finish(self, ref: str, status: Status = Status.SUCCESS, result: Result | None = None,
               executor: str = "executor.1") -> Task:
        """End a task as an executor would report it."""
        task = self._task(ref)
        task.done, task.status, task.executor = True, status, executor
        task.report_time = model.now()
        task.result = result or Result()
        return task

    def _new(self, task: Task, key: str | None) -> Task:
        stored = dataclasses.replace(task, id=model.new_id(), add_time=model.now(),
                                     report_time="", done=False, status=Status.PENDING,
                                     executor=None, result=None, key=key)
        self.tasks[stored.id] = stored
        if key is not None:
            self.keys[key] = stored.id
        return stored

    def _task(self, ref: str) -> Task:
        task = self.tasks.get(self.keys.get(ref, ref))
        if task is None:
            raise NotFound(f"no task {ref!r}")
        return task

    @staticmethod
    def _check_id(task_id: str) -> None:
        if not model.valid_id(task_id):
            raise InvalidInput("id must be 24 lowercase hex characters")

    # ------------------------------------------------------------------ seed calls

    def ping(self) -> None:
        self._called("ping")

    def add(self, task: Task) -> str:
        self._called("add", task)
        validate_task(task, self.policy)
        return self._new(task, None).id

    def cancel(self, id: str) -> None:  # noqa: A002 - wire name
        self._called("cancel", id)
        self._check_id(id)
        task = self.tasks.get(id)
        if task is None or task.done:
            raise NotFound(f"no undone task {id}")
        task.done, task.status, task.report_time = True, Status.CANCELLED, model.now()

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        self._called("search", query)
        q = query
        found = [t.brief() for t in self.tasks.values()
                 if (q.id is None or t.id == q.id) and (q.user is None or t.user == q.user)
                 and (q.start_time is None or t.add_time >= q.start_time)
                 and (q.end_time is None or t.add_time <= q.end_time)]
        found.sort(key=lambda b: (b.add_time, b.id), reverse=not q.old_to_new)
        shown = found[q.limit * q.page:q.limit * (q.page + 1)] if q.limit else found
        return model.page_count(len(found), q.limit), shown

    def get(self, id: str) -> Task:  # noqa: A002
        self._called("get", id)
        self._check_id(id)
        task = self.tasks.get(id)
        if task is None:
            raise NotFound(f"no task {id}")
        return task

    def executors(self) -> list[ExecutorInfo]:
        self._called("executors")
        return list(self.executor_list)

    def languages(self) -> list[Language]:
        self._called("languages")
        return list(self.language_list)

    # ------------------------------------------------------------------ executor calls

    def report(self, executor: str, complete: list[Task], executing: list[TaskBrief],
               vacant: int, wait_ms: int = 0, languages: list[Language] | None = None, *,
               timeout: float | None = None, prefer: str | None = None,
               stats: dict[str, Any] | None = None,
               features: list[str] | None = None) -> Assignment:
        """Records the results of tasks `executor` holds, hands it up to `vacant` queued
        tasks (oldest first; a task in an image only with FEATURE_IMAGES in `features`; no
        long-poll: the answer comes at once)."""
        self._called("report", executor, complete, executing, vacant)
        if not executor:
            raise InvalidInput("report needs an executor name")
        self._record(executor, complete)
        held = {t.id for t in self.tasks.values() if t.executor == executor and not t.done}
        cancel = [t.id for t in complete] + [b.id for b in executing if b.id not in held]
        images = FEATURE_IMAGES in (features or [])
        queued = [t for t in self.tasks.values()
                  if not t.done and t.executor is None
                  and (images or (t.compile.image is None and t.execute.image is None))
                  ][:max(0, vacant)]
        for task in queued:
            task.executor, task.status = executor, Status.COMPILING
        running = {b.id for b in executing} & held
        signals = [s for s in self.signals if s[0] in running]
        self.signals = [s for s in self.signals if s not in signals]
        return Assignment(assign=[dataclasses.replace(t) for t in queued], cancel=cancel,
                          signals=signals)

    def _record(self, executor: str, complete: list[Task]) -> None:
        for done in complete:
            task = self.tasks.get(done.id)
            if task is not None and task.executor == executor and not task.done:
                self.finish(task.id, done.status, done.result, executor)

    def wake(self, executor: str, *, timeout: float | None = None,
             prefer: str | None = None) -> None:
        self._called("wake", executor)

    def hand_in(self, executor: str, complete: list[Task], *,
                timeout: float | None = None) -> None:
        self._called("hand_in", executor, complete)
        if not executor:
            raise InvalidInput("hand_in needs an executor name")
        self._record(executor, complete)

    def drain(self, executor: str, *, timeout: float | None = None) -> list[str]:
        self._called("drain", executor)
        return ["stub"]

    def leave(self, executor: str, *, timeout: float | None = None) -> list[str]:
        """What `executor` holds goes back to the queue as Retrying."""
        self._called("leave", executor)
        for task in self.tasks.values():
            if task.executor == executor and not task.done:
                task.executor, task.status = None, Status.RETRYING
        return ["stub"]

    # ------------------------------------------------------------------ API v2 calls

    def submit(self, tasks: list[Task]) -> list[SubmitOutcome]:
        self._called("submit", tasks)
        return [self._submit_one(task) for task in tasks]

    def _submit_one(self, task: Task) -> SubmitOutcome:
        try:
            if task.key is not None and not model.valid_key(task.key):
                raise InvalidInput("a task id must be 1 to 64 of A-Z a-z 0-9 . _ -")
            validate_task(task, self.policy)
        except KhalaError as exc:
            return SubmitOutcome(exc.code, detail=str(exc))
        if task.key is None or task.key not in self.keys:
            return SubmitOutcome(Code.OK, self._new(task, task.key).id, created=True)
        stored = self.tasks[self.keys[task.key]]
        same = (stored.user, stored.compile, stored.execute) == (
            task.user, task.compile, task.execute)
        if same:
            return SubmitOutcome(Code.OK, stored.id, created=False)
        return SubmitOutcome(Code.CONFLICT, stored.id,
                             detail=f"task {task.key!r} exists with a different body")

    def find(self, ref: str, wait: float = 0.0, lean: bool = False) -> Task:
        self._called("find", ref, wait, lean)
        task = self._task(ref)
        # lean as the judicator leaves it: through the wire conversion itself
        return convert.task_from_thrift(convert.task_to_thrift(task, lean=True)) if lean else task

    def page(self, query: PageQuery) -> tuple[list[TaskBrief], bool]:
        self._called("page", query)
        q = query
        if not 1 <= q.limit <= MAX_PAGE or (q.after_id is not None
                                             and not model.valid_id(q.after_id)):
            raise InvalidInput("the list query was refused")
        found = [t.brief() for t in self.tasks.values()
                 if (q.user is None or t.user == q.user)
                 and (not q.statuses or int(t.status) in q.statuses)
                 and (q.start_time is None or t.add_time >= q.start_time)
                 and (q.end_time is None or t.add_time <= q.end_time)
                 and (not q.key_prefix or (t.key or "").startswith(q.key_prefix))]
        found.sort(key=lambda b: (b.add_time, b.id), reverse=not q.old_to_new)
        if q.after_time is not None:
            cursor = (q.after_time, q.after_id or "")
            found = [b for b in found if ((b.add_time, b.id) > cursor if q.old_to_new
                                          else (b.add_time, b.id) < cursor)]
        return found[:q.limit], len(found) > q.limit

    def signal(self, ref: str, signum: int) -> None:
        self._called("signal", ref, signum)
        if signum not in SIGNALS:
            raise InvalidInput(f"unknown signal {signum}")
        task = self._task(ref)
        if task.done:
            raise Conflict("the task is done")
        self.signals.append((task.id, signum))

    def stop(self, ref: str) -> None:
        self._called("stop", ref)
        task = self._task(ref)
        if task.done:
            raise Conflict("the task is done")
        task.done, task.status, task.report_time = True, Status.CANCELLED, model.now()

    def remove(self, ref: str) -> None:
        self._called("remove", ref)
        task = self._task(ref)
        if not task.done:
            raise Conflict("the task is not done")
        del self.tasks[task.id]
        if task.key is not None:
            self.keys.pop(task.key, None)

    def executor_stats(self, name: str = "") -> list[dict[str, Any]]:
        self._called("executor_stats", name)
        found = [s for s in self.stats if not name or s.get("name") == name]
        if name and not found:
            raise NotFound(f"no live executor {name!r}")
        return found

    # ------------------------------------------------------------------ jobs

    def job_create(self, spec: JobSpec) -> JobView:
        """A job is kept as created (waiting); its runs are not started."""
        self._called("job_create", spec)
        validate_spec(spec, self.policy)
        if spec.name in self.jobs:
            raise Conflict("a job has this name")
        t = spec.template
        view = JobView(name=spec.name, type=spec.type, replica=spec.replica, cron=spec.cron,
                       interval=spec.interval, deps=list(spec.deps),
                       retry_attempts=spec.retry_attempts, retry_backoff=spec.retry_backoff,
                       meta=dict(spec.meta), user=t.user, priority=t.priority,
                       command=t.execute.command, status="waiting", created=model.now())
        self.jobs[spec.name] = view
        self.job_templates[spec.name] = spec.template
        return view

    def job_define(self, spec: JobSpec) -> JobView:
        """Created stopped."""
        view = self.job_create(spec)
        view.status = "stopped"
        return view

    def job_set_meta(self, name: str, spec: JobSpec) -> JobView:
        self._called("job_set_meta", name, spec)
        view = self._job(name)
        view.meta = dict(spec.meta)
        return view

    def job_respec(self, name: str, spec: JobSpec, start: bool = True) -> JobView:
        self._called("job_respec", name, spec, start)
        view = self._job(name)
        view.meta, view.command = dict(spec.meta), spec.template.execute.command
        self.job_templates[name] = spec.template
        view.generation += 1
        view.status = "waiting" if start else "stopped"
        return view

    def job_list(self) -> list[JobView]:
        self._called("job_list")
        return list(self.jobs.values())

    def job_get(self, name: str) -> JobView:
        self._called("job_get", name)
        return self._job(name)

    def job_inspect(self, name: str) -> JobView:
        self._called("job_inspect", name)
        return dataclasses.replace(self._job(name), template=self.job_templates[name])

    def job_restart(self, name: str) -> JobView:
        self._called("job_restart", name)
        view = self._job(name)
        view.generation += 1
        view.status = "waiting"
        return view

    def job_stop(self, name: str) -> JobView:
        """Stopped at once (a stub job has no runs to stop); kept until deleted."""
        self._called("job_stop", name)
        view = self._job(name)
        view.generation += 1
        view.status = "stopped"
        return view

    def job_delete(self, name: str) -> JobView | None:
        """Gone at once (a stub job has no runs to stop)."""
        self._called("job_delete", name)
        self._job(name)
        del self.jobs[name]
        return None

    def _job(self, name: str) -> JobView:
        view = self.jobs.get(name)
        if view is None:
            raise NotFound(f"no job {name!r}")
        return view

