"""Jobs on the judicator (docs/jobs.md): create, list, read, restart and delete them
on the store, and observe their runs. The leader's scheduler (scheduler.py) drives them.

Runs are ordinary tasks submitted through TaskApi under their run key (khala/jobs/model.py),
so they appear in every task API and a run is never created twice.
"""

from __future__ import annotations

import dataclasses
import logging
import signal as _signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from khala import model
from khala.config import JudicatorSettings
from khala.errors import Conflict, InvalidInput, NotFound, Unavailable
from khala.jobs.deps import cycle_through, describe
from khala.jobs.model import (
    JobRun,
    JobSpec,
    JobState,
    JobView,
    RunView,
    run_key,
    spec_from_dict,
    spec_to_dict,
    state_from_dict,
    state_to_dict,
)
from khala.jobs.plan import Bounds
from khala.jobs.plan import stopped as ending
from khala.jobs.validate import validate_spec
from khala.judicator.tasks import TaskApi, task_digest
from khala.model import Code, Status, SubmitOutcome, Task
from khala.store.base import Store, StoredJob

log = logging.getLogger(__name__)

SAVE_TRIES = 5  # a restart/delete re-reads and retries when the scheduler wrote meanwhile
OWNERSHIP_CACHE = 4096  # (task, key) pairs whose ownership is remembered (digests cost)


def decode(stored: StoredJob) -> tuple[JobSpec, JobState]:
    return spec_from_dict(stored.spec), state_from_dict(stored.state, stored.version)


def run_view(task: Task) -> RunView:
    return RunView(task.id, task.key or "", task.status, task.done, task.executor,
                   task.add_time, task.report_time)


def bounds_of(settings: JudicatorSettings) -> Bounds:
    return Bounds(backoff=settings.job_backoff, backoff_max=settings.job_backoff_max,
                  keep_runs=settings.job_keep_runs)


class JobApi:
    def __init__(self, store: Store, settings: JudicatorSettings, tasks: TaskApi) -> None:
        self.store = store
        self.settings = settings
        self.tasks = tasks
        self.bounds = bounds_of(settings)
        self._owned = _Remembered(OWNERSHIP_CACHE)  # (task id, key) → a run of the job's
        self._templates = _Remembered(OWNERSHIP_CACHE)  # (job name, uid) → template digest

    # ------------------------------------------------------------------ runs

    def observe(self, spec: JobSpec, state: JobState) -> dict[int, RunView | None]:
        """The task of each replica's current run key (None: not submitted yet, or held by a
        task this job did not create, which is never taken for its run)."""
        return self.survey(spec, state)[0]

    def survey(self, spec: JobSpec, state: JobState
               ) -> tuple[dict[int, RunView | None], dict[str, str]]:
        """`observe`'s runs, and the current run keys held by a task the job did not create
        (key → that task's id)."""
        if not state.started or (spec.type == "cron" and not state.fired):
            return {}, {}
        runs: dict[int, RunView | None] = {}
        foreign: dict[str, str] = {}
        for i in range(len(state.cursor)):
            key = run_key(spec, state, i)
            task_id = self.store.resolve(key)
            task = None if task_id is None else self.store.get(task_id)
            if task is not None and not self._created_for(task, key, spec, state.uid):
                foreign[key] = task.id
                task = None
            runs[i] = None if task is None else run_view(task)
        return runs, foreign

    def _created_for(self, task: Task, key: str, spec: JobSpec, uid: str) -> bool:
        """Whether `task` is the run the scheduler submitted under `key`: it carries the key
        and the job's template (user, both steps). A task that took the key otherwise is never
        adopted. Remembered, as the digests read every byte of both."""
        known = self._owned.get((task.id, key))
        if known is None:
            template = self._templates.get((spec.name, uid), lambda: task_digest(spec.template))
            known = task.key == key and task_digest(task) == template
            self._owned.put((task.id, key), known)
        return bool(known)

    def submit_runs(self, spec: JobSpec, state: JobState, replicas: list[int]) -> None:
        """Submit the current run of each replica under its key (idempotent)."""
        tasks = []
        for i in replicas:
            task = dataclasses.replace(spec.template, key=run_key(spec, state, i))
            task.compile = dataclasses.replace(task.compile)
            task.execute = dataclasses.replace(task.execute)
            tasks.append(task)
        outcomes: list[SubmitOutcome] = (
            self.tasks.submit(tasks, job_runs=True, offered_only=False) if tasks else [])
        for outcome in outcomes:
            if outcome.code != Code.OK:
                log.warning("job %s: a run was refused: %s", spec.name, outcome.detail)

    def remove_run(self, spec: JobSpec, state: JobState, key: str) -> bool:
        """Remove the task of a past run; False while it is not done yet. A task under the key
        that this job did not create is left alone (and forgotten)."""
        task_id = self.store.resolve(key)
        task = None if task_id is None else self.store.get(task_id)
        if task is None or not self._created_for(task, key, spec, state.uid):
            return True
        try:
            self.tasks.remove(task.id)
        except NotFound:
            pass
        except Conflict:
            return False
        return True

    # ------------------------------------------------------------------ client calls

    def _checked(self, spec: JobSpec) -> None:
        """InvalidInput for a bad field or a template naming an image that does not exist."""
        validate_spec(spec, self.settings)
        template = spec.template  # its images exist now (each run resolves them again)
        self.tasks.images.attach(dataclasses.replace(
            template, compile=dataclasses.replace(template.compile),
            execute=dataclasses.replace(template.execute)))

    def create(self, spec: JobSpec, stopped: bool = False) -> JobView:
        """Raises InvalidInput (a bad field), Conflict (the name is taken). `stopped`: the job
        is created stopped (op `define`): nothing runs until a restart."""
        self._checked(spec)
        graph = {s.name: list(s.spec.get("deps") or []) for s in self.store.jobs()}
        if spec.name in graph:
            raise Conflict("a job has this name")
        cycle = cycle_through(spec.name, {**graph, spec.name: spec.deps})
        if cycle is not None:
            raise InvalidInput(f"deps: a dependency cycle: {describe(cycle)}")
        state = JobState(created=model.now(), stopped=stopped)
        if not self.store.create_job(spec.name, spec_to_dict(spec), state_to_dict(state)):
            raise Conflict("a job has this name")
        log.info("job %s created (%s, %d replica(s))", spec.name, spec.type, spec.replica)
        return self.get(spec.name)

    def get(self, name: str, template: bool = False) -> JobView:
        """Raises NotFound. `template`: with the runs' task template (op inspect)."""
        stored = self.store.job(name)
        if stored is None:
            raise NotFound(f"no job {name!r}")
        spec, state = decode(stored)
        view = self.view(spec, state)
        if template:
            view.template = spec.template
        return view

    def list(self) -> list[JobView]:
        return [self.view(*decode(s)) for s in self.store.jobs()]

    def restart(self, name: str) -> JobView:
        """Raises NotFound, Conflict (the job is being deleted). Also starts a stopped job."""
        self._stop(name, delete=False)
        return self.get(name)

    def stop(self, name: str) -> JobView:
        """Stop the job's runs and keep the job, stopped, until a restart or a delete.
        Raises NotFound, Conflict (the job is being deleted)."""
        self._stop(name, delete=False, stopped=True)
        return self.get(name)

    def delete(self, name: str) -> JobView | None:
        """The job while it stops its runs; None once it is gone. Raises NotFound, Conflict
        (the job is being deleted)."""
        self._stop(name, delete=True)
        try:
            return self.get(name)
        except NotFound:
            return None

    def set_meta(self, name: str, meta: dict[str, Any]) -> JobView:
        """Replace the job's `meta` (op `meta`): its runs and template stay as they are.
        Raises NotFound, Conflict (the job is being deleted), InvalidInput."""
        if not isinstance(meta, dict):
            raise InvalidInput("meta must be an object")
        for _ in range(SAVE_TRIES):
            stored = self.store.job(name)
            if stored is None or stored.state.get("deleted"):
                raise NotFound(f"no job {name!r}")
            spec = dataclasses.replace(decode(stored)[0], meta=dict(meta))
            if self.store.save_job(name, stored.version, stored.state, spec_to_dict(spec)):
                return self.get(name)
        raise Unavailable(f"job {name!r} kept changing; try again")

    def respec(self, name: str, given: JobSpec, start: bool) -> JobView:
        """Replace the job's task template and meta (ops `respec`, which then starts it as a
        restart does, and `redefine`, which leaves it stopped). Its current runs stop as for a
        restart; its next runs run the new template under a new incarnation (`uid`), so no run
        of the old template is ever taken for one of the new (the template is part of a run's
        ownership). The other fields stay the job's. Raises NotFound, Conflict, InvalidInput."""
        stored = self.store.job(name)
        if stored is None:
            raise NotFound(f"no job {name!r}")
        spec = dataclasses.replace(decode(stored)[0], template=given.template,
                                   meta=dict(given.meta))
        self._checked(spec)
        self._stop(name, delete=False, stopped=not start, spec=spec)
        return self.get(name)

    def _stop(self, name: str, delete: bool, stopped: bool = False,
              spec: JobSpec | None = None) -> None:
        """Stop the job's runs (SIGTERM now, cancelled by the scheduler after the grace
        period); restart: a new generation starts once they are over; stop (`stopped`): the
        new generation waits for a restart; delete: the job goes. `spec`: the job's new spec,
        saved with the new state, under a new incarnation (respec)."""
        for _ in range(SAVE_TRIES):
            stored = self.store.job(name)
            if stored is None or (stored.state.get("deleted") and delete):
                raise NotFound(f"no job {name!r}")
            old, state = decode(stored)
            if state.deleted:
                raise Conflict("the job is being deleted")
            current = self.observe(old, state)
            runs = [r for r in current.values() if r is not None and not r.done]
            new = ending(state, current, sorted({*state.stopping, *(r.id for r in runs)}),
                         time.time() + self.settings.job_stop_grace, delete, self.bounds,
                         halted=stopped)
            if spec is not None:
                new = dataclasses.replace(new, uid=JobState().uid, kept=[], prune=[])
            if self.store.save_job(name, stored.version, state_to_dict(new),
                                   None if spec is None else spec_to_dict(spec)):
                break
        else:
            raise Unavailable(f"job {name!r} kept changing; try again")
        for run in runs:
            if run.executor is None:
                self.tasks.end(run.id)  # not started yet: nothing to terminate
            else:
                self.tasks.end(run.id, int(_signal.SIGTERM))
        done = "deleted" if delete else "stopped" if stopped else "restarted"
        log.info("job %s: %s, stopping %d run(s)", name, done, len(runs))

    # ------------------------------------------------------------------ views

    def view(self, spec: JobSpec, state: JobState) -> JobView:
        runs = self.observe(spec, state)
        running = [JobRun(id=r.key, seed_id=r.id, alias=f"{spec.name}:{i}",
                          executor=r.executor, status=int(r.status))
                   for i, r in sorted(runs.items()) if r is not None and not r.done]
        running += ending_runs(self.store, spec, state)
        return JobView(
            name=spec.name, type=spec.type, replica=spec.replica, cron=spec.cron,
            interval=spec.interval, deps=list(spec.deps), retry_attempts=spec.retry_attempts,
            retry_backoff=spec.retry_backoff, meta=dict(spec.meta), user=spec.template.user,
            priority=spec.template.priority, command=spec.template.execute.command,
            status=job_status(spec, state, runs), generation=state.generation,
            created=state.created, tasks=running,
            last_start=_latest(state.last_start, *(r.add_time for r in runs.values() if r)),
            last_end=_latest(state.last_end, *(r.report_time for r in runs.values()
                                                if r and r.done)),
            blocked=state.blocked or None,
        )


class _Remembered:
    """A bounded map, least recently used out first, shared by the scheduler's thread and the
    Thrift threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], make: Callable[[], Any] | None = None) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        if make is None:
            return None
        value = make()
        self.put(key, value)
        return value

    def put(self, key: tuple[str, str], value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def ending_runs(store: Store, spec: JobSpec, state: JobState) -> list[JobRun]:
    """The runs a restart, stop or delete is stopping that have not ended yet (they run until
    they exit, or are killed after the grace period)."""
    ending = []
    for task_id in state.stopping:
        task = store.get(task_id)
        if task is None or task.done:
            continue
        replica = (task.key or "").split(".")[3:4]  # <name>.<uid>.<gen>.<replica>.…
        ending.append(JobRun(id=task.key or task.id, seed_id=task.id,
                             alias=f"{spec.name}:{replica[0] if replica else '?'}",
                             executor=task.executor, status=int(task.status)))
    return ending


def _latest(*times: str) -> str | None:
    return max((t for t in times if t), default=None)


def job_status(spec: JobSpec, state: JobState, runs: dict[int, RunView | None]) -> str:
    """deleting, stopping, stopped, blocked, waiting (dependencies), succeeded/failed (once),
    scheduled (cron between ticks), running."""
    if state.deleted:
        return "deleting"
    if state.stopped:  # also while its last runs end: none starts any more
        return "stopped"
    if state.stopping:
        return "stopping"
    if state.blocked:
        return "blocked"
    if not state.started:
        return "waiting"
    if spec.type == "once" and state.outcome:
        return state.outcome
    if any(r is not None and not r.done for r in runs.values()):
        return "running"
    return "scheduled" if spec.type == "cron" else ("running" if spec.type == "daemon"
                                                    else "starting")


__all__ = ["JobApi", "Status"]
