"""The API v2 side of the judicator, on domain types: keyed (idempotent) submission, waiting for
a task to finish, keyset pages, signals, cancel and removal.

Methods return domain values and raise the refusals (InvalidInput, NotFound, Conflict); the
Thrift handler (khala/rpc/handler.py) converts wire structs and calls them.

Keyed submission, atomically in the store (also on FerretDB, which has no transactions):
1. the key is claimed with an insert-if-absent (`claim_key`) naming a fresh task id (the key
   itself when it has the 24-hex form of a task id);
2. the task is inserted under the id the key names (`insert_new`, a unique id). Exactly one
   caller inserts it, whoever won the key: a caller that lost the key but finds no task yet
   (the winner has not inserted it, or died in between) inserts the same task itself;
3. a caller whose insert lost compares its task with the stored one (`task_digest`): the same
   → OK, created=false; different → CONFLICT. The callback URL is part of the task (stored
   with it): a re-post with another one, or without the one the task has, is different. A
   re-post that is the same records the webhook too (a no-op, unless the caller that inserted
   the task died before it did).
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal as _signal
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from khala import model
from khala.config import JudicatorSettings
from khala.errors import Conflict, InvalidInput, NotFound, TooLarge
from khala.jobs.model import RESERVED, is_run_key
from khala.judicator.images import ImageApi
from khala.judicator.notifier import DoneWatch
from khala.judicator.offered import check_offered
from khala.judicator.problems import ProblemApi
from khala.model import (
    MAX_PAGE,
    Code,
    Language,
    PageQuery,
    Status,
    SubmitOutcome,
    Task,
    TaskBrief,
)
from khala.rules.limits import validate_task
from khala.store.base import Store

log = logging.getLogger(__name__)

# A waiter re-reads its task at least this often even when no finish announcement reached it
# (etcd down, an announcement lost): the bound on how late `?wait=` can answer in that case.
WAIT_FALLBACK_SECONDS = 2.0
SIGNALS = frozenset(int(s) for s in _signal.Signals)


def task_digest(task: Task) -> str:
    """A digest of what a client sent (user, both steps with files and limits, the callback
    URL): two keyed submissions are "the same" when their digests are equal."""
    c, e = asdict(task.compile), asdict(task.execute)
    c["source"] = hashlib.sha256(task.compile.source).hexdigest()
    e["data"] = hashlib.sha256(task.execute.data).hexdigest()
    if task.execute.problem is not None:  # what the client named, not what was resolved
        e["problem"] = {"id": task.execute.problem.id, "version": task.execute.problem.version}
    for part, ref in ((c, task.compile.image), (e, task.execute.image)):
        if ref is not None:  # likewise
            part["image"] = {"name": ref.name, "version": ref.version}
    text = json.dumps({"user": task.user, "compile": c, "execute": e,
                       "callback_url": task.callback_url}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _callback_difference(stored: Task | None, task: Task) -> str:
    if stored is None or stored.callback_url == task.callback_url:
        return ""
    return " (its callback_url differs: a task's webhook cannot be changed)"


class TaskApi:
    #: The operations side (khala/judicator/ops.py: webhooks), set by the judicator server.
    ops: Any = None

    def __init__(
        self,
        store: Store,
        settings: JudicatorSettings,
        done: DoneWatch,
        on_queued: Callable[[], None],
        on_changed: Callable[[], None],
        problems: ProblemApi | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.done = done
        self.problems = problems or ProblemApi(store, settings)  # tasks naming a problem
        self.images = ImageApi(store, settings)  # tasks naming images
        self._on_queued = on_queued  # wake executors' long-polls (here and elsewhere)
        self._on_changed = on_changed  # a cancel or a signal: long-polls re-check their tasks

    # ------------------------------------------------------------------ submission

    def submit(self, tasks: list[Task], job_runs: bool = False,
               offered_only: bool = True) -> list[SubmitOutcome]:
        """Store new tasks (or find them under their keys): clients' tasks; with `job_runs`,
        the scheduler's runs, whose keys are in the namespace reserved for them
        (khala/jobs/model.py) — and only theirs. `offered_only`: refuse a task naming a
        language no live executor offers (clients; job runs are submitted without it,
        their template was accepted once)."""
        outcomes = [self._submit_one(task, job_runs, offered_only) for task in tasks]
        if any(o.created for o in outcomes):
            self._on_queued()
        return outcomes

    def _validated(self, task: Task, job_run: bool, offered_only: bool) -> Task:
        if task.key is not None and not model.valid_key(task.key):
            raise InvalidInput("a task id must be 1 to 64 of A-Z a-z 0-9 . _ -")
        if (task.key is not None and is_run_key(task.key)) != job_run:
            raise InvalidInput(RESERVED if not job_run else "a job run needs a run key")
        task = self.problems.attach(task)  # the version it is judged against
        task = self.images.attach(task)  # the image versions its steps run in
        validate_task(task, self.settings)
        if offered_only:
            check_offered(task, self.live_languages)
        if self.ops is not None:
            self.ops.check(task)  # the callback URL
        task.add_time, task.report_time = model.now(), ""
        task.done, task.status, task.executor, task.result = False, Status.PENDING, None, None
        return task

    def live_languages(self) -> list[Language]:
        """The languages of the executors that reported within the expiry."""
        return self.store.languages(model.time_before(self.settings.expiry))

    def _submit_one(self, task: Task, job_run: bool, offered_only: bool) -> SubmitOutcome:
        try:
            task = self._validated(task, job_run, offered_only)
        except TooLarge as exc:
            return SubmitOutcome(Code.TOO_LARGE, detail=str(exc))
        except InvalidInput as exc:
            return SubmitOutcome(Code.INVALID_INPUT, detail=str(exc))
        if task.key is None:
            task.id = model.new_id()
            self.store.add(task)
            return self._confirmed(task)
        fresh = task.key if model.valid_id(task.key) else model.new_id()
        task.id = self.store.claim_key(task.key, fresh)
        if self.store.insert_new(task):
            return self._confirmed(task)
        stored = self.store.get(task.id)
        if stored is not None and stored.key == task.key and (
            task_digest(stored) == task_digest(task)
        ):
            self._created(task)  # its webhook: recorded already, unless its inserter died
            return SubmitOutcome(Code.OK, task.id, created=False)
        return SubmitOutcome(
            Code.CONFLICT, task.id, detail=f"task {task.key!r} exists with a different body"
            + _callback_difference(stored, task)
        )

    def _confirmed(self, task: Task) -> SubmitOutcome:
        """A stored new task, unless the problem version it names went meanwhile."""
        try:
            self.problems.confirm(task)
        except InvalidInput as exc:
            return SubmitOutcome(Code.INVALID_INPUT, detail=str(exc))
        self.images.confirm(task)
        self._created(task)
        return SubmitOutcome(Code.OK, task.id, created=True)

    # ------------------------------------------------------------------ reading

    def find(self, ref: str, wait: float, lean: bool = False) -> Task:
        """The task `ref` names; with wait > 0, once it is done or `wait` seconds passed.
        `lean`: its cases' texts and standard outputs may come empty (Store.get). Raises
        NotFound."""
        task_id = self.store.resolve(ref)
        if task_id is None:
            raise NotFound(f"no task {ref!r}")
        wait = min(max(0.0, wait), float(self.settings.max_task_wait))
        event = self.done.watch(task_id)  # before the read: a finish in between sets it
        try:
            deadline = time.monotonic() + wait
            while True:
                task = self.store.get(task_id, lean)
                if task is None:
                    raise NotFound(f"no task {ref!r}")
                remaining = deadline - time.monotonic()
                if task.done or remaining <= 0:
                    if task.execute.problem is not None:  # rejudged: its earlier judgements
                        task.history = self.store.history(task.id)
                    return task if self.ops is None else self.ops.attach(task)
                event.wait(min(remaining, WAIT_FALLBACK_SECONDS))
                event.clear()
        finally:
            self.done.unwatch(task_id, event)

    def page(self, query: PageQuery) -> tuple[list[TaskBrief], bool]:
        """One page and whether more follow. Raises InvalidInput for a bad query."""
        if not 1 <= query.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be within 1..{MAX_PAGE}")
        if query.after_id is not None and not model.valid_id(query.after_id):
            raise InvalidInput("malformed cursor")
        if query.after_time is not None:
            try:
                query.after_time = model.canonical_time(query.after_time)
            except ValueError as exc:
                raise InvalidInput(f"malformed cursor: {exc}") from exc
        for status in query.statuses:
            if status not in set(Status):
                raise InvalidInput(f"unknown status {status}")
        if query.key_prefix is not None and not model.valid_key(query.key_prefix):
            raise InvalidInput("a key prefix must be 1 to 64 of A-Z a-z 0-9 . _ -")
        wanted = query.limit
        query.limit = wanted + 1
        briefs = self.store.page(query)
        return briefs[:wanted], len(briefs) > wanted

    # ------------------------------------------------------------------ control

    def signal(self, ref: str, signum: int) -> None:
        """Queue `signum` for the task's running step. Raises InvalidInput (no such signal),
        NotFound, Conflict (the task is done)."""
        if signum not in SIGNALS:
            raise InvalidInput(f"unknown signal {signum}")
        task = self._undone(ref)
        self.store.add_signal(task.id, signum, model.now())
        self._on_changed()

    def stop(self, ref: str) -> None:
        """Cancel the task. Raises NotFound, Conflict (it is done)."""
        task = self._undone(ref)
        if not self.store.cancel(task.id, model.now()):
            raise Conflict("the task is done")  # just now
        self._on_changed()
        self.finished([task.id])

    def remove(self, ref: str) -> None:
        """Delete a done task. Raises NotFound, Conflict (it is not done)."""
        task = self._task(ref)
        if not task.done:
            raise Conflict("the task is not done")
        if not self.store.remove(task.id):
            raise NotFound(f"no task {ref!r}")

    def end(self, task_id: str, signum: int | None = None) -> None:
        """Stop a job's run, or send it `signum`: nothing to do when it ended meanwhile."""
        try:
            if signum is None:
                self.stop(task_id)
            else:
                self.signal(task_id, signum)
        except (NotFound, Conflict):
            pass

    def _task(self, ref: str) -> Task:
        task_id = self.store.resolve(ref)
        task = None if task_id is None else self.store.get(task_id)
        if task is None:
            raise NotFound(f"no task {ref!r}")
        return task

    def _undone(self, ref: str) -> Task:
        task = self._task(ref)
        if task.done:
            raise Conflict("the task is done")
        return task

    # ------------------------------------------------------------------ finishes

    def finished(self, task_ids: list[str]) -> None:
        """Tasks recorded done by this judicator: wake the waiters here (other judicators
        learn it through the registration's announcement, see JudicatorService)."""
        if task_ids:
            self.done.finished(task_ids)
            if self.ops is not None:
                self.ops.finished(task_ids)

    def _created(self, task: Task) -> None:
        if self.ops is not None:
            self.ops.created(task)
