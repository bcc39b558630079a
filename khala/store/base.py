"""The Store interface: the judicator's only way to persist tasks and executors.

Every conditional update is a single atomic operation in the backend, so several judicators
sharing one store cannot both assign a task or record two results for it. Which states each
change starts from and what it sets is stated once in khala.rules.lifecycle; the backends translate.

An executor's writes (`progress`, `finish`, `requeue`) answer True (written), False (the task is
not, or no longer, this executor's) or None: nothing written because the task's record is held
by another writer for longer than a write waits (a backend that must coordinate its writers
itself, khala/store/mongo/ferret.py); the caller tries again later. Every other write raises
Unavailable then.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from khala.model import (
    ExecutorInfo,
    Judged,
    Language,
    PageQuery,
    ProblemRef,
    Result,
    SearchQuery,
    Status,
    Task,
    TaskBrief,
)
from khala.problems.model import RejudgeCounts, VerdictChange
from khala.store.files import FileStore
from khala.store.images import ImageStore
from khala.store.ops import OpsStore
from khala.store.problems import ProblemStore


@dataclass
class StoredJob:
    name: str
    spec: dict[str, Any]
    state: dict[str, Any]
    version: int


class Store(ABC):
    """Tasks and executors. All times are canonical ISO strings (khala.model.TIME_FORMAT)."""

    #: The operations side (executor statistics, webhooks) on the same connections.
    ops: OpsStore
    #: Content-addressed files (khala/store/files.py) beside the tasks.
    files: FileStore
    #: Problems, their versions and rejudges (khala/store/problems.py) beside the tasks.
    problems: ProblemStore
    #: Image names and versions (khala/store/images.py) beside the tasks.
    images: ImageStore

    # ------------------------------------------------------------------ tasks (clients)

    @abstractmethod
    def add(self, task: Task) -> str:
        """Insert a new task. `task.id` and `task.add_time` are already set by the caller."""

    @abstractmethod
    def get(self, task_id: str, lean: bool = False) -> Task | None:
        """The whole task, or None. `lean`: its cases' input and standard texts and its
        result's standard outputs (compile_output, execute_output) come empty, not read (for a
        caller that shows the task, not one that runs it or serves its outputs; on SQLite a
        task stored before bodies and outputs had places of their own comes whole)."""

    @abstractmethod
    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        """(total matching, the requested page) ordered by add_time (then id), newest first
        unless query.old_to_new."""

    @abstractmethod
    def cancel(self, task_id: str, now: str) -> bool:
        """Undone task → done, Cancelled (the executor that held it kept). False if unknown or
        already done."""

    # ------------------------------------------------------------------ tasks (executors)

    @abstractmethod
    def assign(self, executor: str, count: int, now: str,
               languages: frozenset[str] | None = None, images: bool = True) -> list[Task]:
        """Atomically take up to `count` queued (Pending/Retrying, no executor, not done) tasks
        for `executor` in khala.rules.dispatch.fair_order (priority, then fair share between users,
        then oldest first): status Compiling, report_time now. Returns them whole. The
        candidates are gathered by indexed lookups, never a scan of the queue. With
        `languages` given, only tasks whose language, checker and interactor languages (when
        set) are among them (judging: dispatch only to executors that have the language).
        `images` False: only tasks neither of whose steps names an image (an executor that
        cannot run steps in images)."""

    @abstractmethod
    def has_queued(self) -> bool:
        """Whether any task waits for an executor."""

    @abstractmethod
    def finish(
        self, task_id: str, executor: str, status: Status, result: Result, now: str
    ) -> bool | None:
        """Record a result only if the task is undone and held by `executor`: done, status,
        result, report_time, executor kept as the one that ran it. False otherwise (None:
        not written now, see above)."""

    @abstractmethod
    def keep(self, task_id: str, executor: str, result: Result) -> bool | None:
        """Record the result of a cancelled task's stopped run (the output it had) if the task
        is Cancelled, ran on `executor` and has no result yet. False otherwise (None: not
        written now, see above)."""

    @abstractmethod
    def progress(self, task_id: str, executor: str, status: Status, now: str) -> bool | None:
        """Update status and report_time of an undone task held by `executor`. False if the
        task is not (any longer) this executor's (None: not written now)."""

    @abstractmethod
    def held_by(self, executor: str) -> list[TaskBrief]:
        """Undone tasks currently assigned to `executor`."""

    @abstractmethod
    def requeue(self, task_id: str, executor: str, now: str) -> bool | None:
        """Undone task held by `executor` → Retrying with no executor. False otherwise (None:
        not written now)."""

    @abstractmethod
    def stale_tasks(self, before: str) -> list[TaskBrief]:
        """Undone tasks held by some executor whose report_time is older than `before`."""

    # ------------------------------------------------------------------ executors

    @abstractmethod
    def touch_executor(self, hostname: str, now: str,
                       languages: list[Language] | None = None) -> None:
        """Create or refresh the executor record (report_time = now); `languages` (None: keep
        what is recorded) replaces its language presets."""

    @abstractmethod
    def languages(self, since: str) -> list[Language]:
        """The presets of executors whose last report is at or after `since`: by name, each
        with the versions seen (joined by " | " when executors differ) and its executor count."""

    @abstractmethod
    def executors(self, since: str) -> list[ExecutorInfo]:
        """Executors whose last report is at or after `since`, by hostname."""

    @abstractmethod
    def remove_executors(self, before: str) -> list[str]:
        """Delete executors silent since before `before`; returns their hostnames."""

    @abstractmethod
    def remove_executor(self, hostname: str) -> bool:
        """Delete one executor's record (it left). False if there was none."""

    # ------------------------------------------------------------------ API v2

    @abstractmethod
    def claim_key(self, key: str, task_id: str) -> str:
        """Insert-if-absent of a client-chosen key naming `task_id`, atomic in the backend
        (a unique key): returns the task id the key names afterwards — `task_id` if this call
        won, else the one named before."""

    @abstractmethod
    def insert_new(self, task: Task) -> bool:
        """Like add, but False (nothing written) when a task with that id exists."""

    @abstractmethod
    def resolve(self, ref: str) -> str | None:
        """The task id named by a key, or `ref` itself when it is the id of a task."""

    @abstractmethod
    def page(self, query: PageQuery) -> list[TaskBrief]:
        """Up to query.limit briefs after the cursor, in add_time (then id) order, newest
        first unless query.old_to_new; each with its key."""

    @abstractmethod
    def remove(self, task_id: str) -> bool:
        """Delete a done task with its key and signals; False if unknown or undone."""

    @abstractmethod
    def add_signal(self, task_id: str, signum: int, now: str) -> None:
        """Queue a signal for the running step of a task."""

    @abstractmethod
    def take_signals(self, task_ids: list[str]) -> list[tuple[str, int]]:
        """Remove and return the queued signals of these tasks, oldest first; a signal is
        handed out by one call only."""

    # ------------------------------------------------------------------ jobs
    # A job is its name, its spec and its state (JSON-able dicts, khala/jobs/model.py) and a
    # version that every state write bumps: writes name the version they read.

    @abstractmethod
    def create_job(self, name: str, spec: dict[str, Any], state: dict[str, Any]) -> bool:
        """Insert-if-absent on the unique name (version 0); False when the name is taken."""

    @abstractmethod
    def job(self, name: str) -> StoredJob | None:
        """One job, or None."""

    @abstractmethod
    def jobs(self) -> list[StoredJob]:
        """Every job, by name."""

    @abstractmethod
    def save_job(self, name: str, version: int, state: dict[str, Any],
                 spec: dict[str, Any] | None = None) -> bool:
        """Replace the state (and the spec, when given) if the job is still at `version`
        (then version + 1)."""

    @abstractmethod
    def delete_job(self, name: str, version: int) -> bool:
        """Delete the job if it is still at `version`."""

    # ------------------------------------------------------------------ problems
    # Tasks judged against a stored problem (Execute.problem): which name a version, and
    # judging one again (rejudge, docs/judging.md). Both backends index the problem's id.

    @abstractmethod
    def problem_named(self, problem: str, version: int | None = None) -> bool:
        """Whether any task (done or not) names the problem (and, given, was judged against
        that version)."""

    @abstractmethod
    def problem_tasks(self, problem: str, after: str, limit: int,
                      version: int | None = None, user: int | None = None,
                      verdict: str | None = None) -> list[str]:
        """Up to `limit` ids, in id order after `after`, of the done tasks judged against the
        problem that lifecycle.REJUDGE may start from, narrowed by the version they were judged
        against, their user, their judgement's verdict."""

    @abstractmethod
    def rejudge_task(self, task_id: str, entry: Judged, problem: ProblemRef, rejudge: str,
                     now: str) -> bool:
        """Atomically, if the task is still in a state lifecycle.REJUDGE starts from: keep
        `entry` (its judgement now) in its history, name `problem` (the version to judge
        against), mark it with `rejudge`, give it REJUDGE_PRIORITY and apply REJUDGE (queued
        again). False (nothing written) otherwise."""

    @abstractmethod
    def history(self, task_id: str) -> list[Judged]:
        """The earlier judgements of a task, oldest first."""

    @abstractmethod
    def rejudge_counts(self, rejudge: str) -> RejudgeCounts:
        """The tasks marked with the rejudge: done, queued (pending or retrying) and running
        (compiling or running)."""

    @abstractmethod
    def rejudge_changes(self, rejudge: str) -> list[VerdictChange]:
        """Of the done tasks marked with the rejudge, how many moved from the verdict their
        history entry of that rejudge keeps to the one they have now, per (before, after)
        pair that differs; ordered by before, then after."""

    def sweep_bodies(self) -> int:
        """Remove task bodies stored apart that no task names, left long enough ago that no
        write under way can still name them; how many went. Only a store that writes a body
        and its task in two steps can leave one (a judicator dying between them): by default
        there are none."""
        return 0

    # ------------------------------------------------------------------ connections

    def release_thread(self) -> None:  # noqa: B027 - optional hook
        """Release what the calling thread holds (its connection); called when a client
        connection's thread ends. The store stays usable from other threads."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
