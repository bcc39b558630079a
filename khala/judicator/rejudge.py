"""Rejudging a problem's tasks (docs/judging.md, "Rejudge"), on domain types.

`create` records a rejudge; the leader's pass (`Rejudger`, every `rejudge_pass` seconds) then
queues its tasks in batches — each one atomically: its judgement so far into its history, the
target version named, the rejudge's mark and the lowest priority set, queued again
(Store.rejudge_task) — remembering how far it got (`cursor`), so a leader that dies mid-way
leaves the rest to the next. Progress is counted from the tasks' marks when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from khala import model
from khala.config import JudicatorSettings
from khala.errors import InvalidInput, NotFound
from khala.judicator.leader_loop import LeaderLoop
from khala.judicator.problems import ProblemApi, check_problem_id, resolved
from khala.model import VERDICT_TEXTS, Judged, Task, valid_int
from khala.problems.model import Rejudge
from khala.store.base import Store

log = logging.getLogger(__name__)

BATCH = 200  # tasks a pass queues per rejudge at most


def judged_entry(task: Task, rejudge: str, now: str) -> Judged:
    """What a task's history keeps of the judgement a rejudge replaces."""
    ref = task.execute.problem
    return Judged(at=now, rejudge=rejudge, version=ref.judged if ref else 0,
                  status=task.status, executor=task.executor, report_time=task.report_time,
                  judgement=task.result.judgement if task.result else None)


class RejudgeApi:
    def __init__(self, store: Store, settings: JudicatorSettings, problems: ProblemApi,
                 on_queued: Callable[[], None]) -> None:
        self.store = store
        self.settings = settings
        self.problems = problems
        self._on_queued = on_queued  # wake the executors' long-polls

    def create(self, spec: Rejudge) -> Rejudge:
        """Record a rejudge of `spec.problem` against `spec.version` (0: the latest, recorded
        by number). InvalidInput for a bad filter or no such version, NotFound for no such
        problem."""
        check_problem_id(spec.problem)
        self.problems.get(spec.problem)
        if spec.verdict is not None and spec.verdict not in VERDICT_TEXTS:
            raise InvalidInput(f"verdict must be one of {sorted(VERDICT_TEXTS)}")
        if spec.user is not None and not valid_int(spec.user):
            raise InvalidInput("user must be an integer within 0..2147483647")
        target = self.problems.live_version(spec.problem, spec.version)
        rejudge = Rejudge(problem=spec.problem, version=target.version,
                          from_version=spec.from_version, user=spec.user,
                          verdict=spec.verdict, id=model.new_id(), created=model.now())
        self.store.problems.add_rejudge(rejudge)
        log.info("rejudge %s of %s against version %d", rejudge.id, rejudge.problem,
                 rejudge.version)
        return self._counted(rejudge)

    def get(self, rejudge_id: str) -> Rejudge:
        found = self.store.problems.rejudge(rejudge_id) if model.valid_id(rejudge_id) else None
        if found is None:
            raise NotFound(f"no rejudge {rejudge_id!r}")
        return self._read(found)

    def of(self, problem: str) -> list[Rejudge]:
        self.problems.get(problem)
        return [self._read(r) for r in self.store.problems.rejudges(problem)]

    def _read(self, rejudge: Rejudge) -> Rejudge:
        """Counted, with its verdict changes: what a reader is shown."""
        counted = self._counted(rejudge)
        counted.changes = self.store.rejudge_changes(rejudge.id)
        return counted

    def _counted(self, rejudge: Rejudge) -> Rejudge:
        counts = self.store.rejudge_counts(rejudge.id)
        rejudge.done, rejudge.running = counts.done, counts.running
        rejudge.pending = counts.queued + counts.running
        if rejudge.state == "running" and rejudge.pending == 0:
            rejudge.state = "done"
        return rejudge

    # ------------------------------------------------------------------ the leader's pass

    def run_pass(self) -> None:
        """Queue the next batch of every rejudge being applied; mark finished ones done."""
        for rejudge in self.store.problems.rejudges():
            if rejudge.state == "applying":
                self._apply(rejudge)
            elif rejudge.state == "running":
                counted = self._counted(rejudge)
                if counted.state == "done":
                    self.store.problems.save_rejudge(counted)

    def _apply(self, rejudge: Rejudge) -> None:
        version = self.store.problems.version(rejudge.problem, rejudge.version)
        if version is None or version.deleting:
            rejudge.state, rejudge.detail = "failed", f"version {rejudge.version} was deleted"
            self.store.problems.save_rejudge(rejudge)
            return
        ids = self.store.problem_tasks(rejudge.problem, rejudge.cursor, BATCH,
                                       version=rejudge.from_version, user=rejudge.user,
                                       verdict=rejudge.verdict)
        now, queued = model.now(), 0
        for task_id in ids:
            task = self.store.get(task_id)
            ref = task.execute.problem if task is not None else None
            if task is None or ref is None or ref.judged == rejudge.version:
                continue  # gone, or judged against the target version already
            target = resolved(ref, version)
            if self.store.rejudge_task(task_id, judged_entry(task, rejudge.id, now), target,
                                       rejudge.id, now):
                queued += 1
        rejudge.total += queued
        if ids:
            rejudge.cursor = ids[-1]
        else:
            rejudge.state = "running"
        self.store.problems.save_rejudge(rejudge)
        if queued:
            self._on_queued()


def rejudger(api: RejudgeApi, is_leader: Callable[[], bool]) -> LeaderLoop:
    """The leader's rejudge pass, every `rejudge_pass` seconds."""
    return LeaderLoop("rejudge", api.settings.rejudge_pass, is_leader, api.run_pass)
