"""The leader's job scheduler (docs/jobs.md): every `job_pass` seconds, while
this judicator leads, one pass over every job.

A pass per job, in an order that makes every run exactly-once across failover:
1. a job being stopped: cancel its runs past the grace period; once they are all over,
   delete the job (DELETE) or let the next generation start (restart);
2. submit every current run the state names that has no task yet (a leader may have died
   between recording a run and submitting it) — idempotent: runs are keyed tasks;
3. plan (khala/jobs/plan.py) and write the new state *before* submitting the runs it starts,
   conditionally on the version read: a run is first recorded, then created under its unique
   key, so neither a crash nor a second scheduler can create it twice.

Before that, the tasks of past runs beyond the kept ones (the state's `prune`) are removed,
then forgotten. A current run key held by a task the job did not create blocks the job (the
task is never taken for its run); so do dependency cycles (khala/jobs/deps.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from khala.jobs.deps import cycles
from khala.jobs.model import JobSpec, JobState, RunView, state_to_dict
from khala.jobs.plan import dependency_view, plan
from khala.judicator.jobs import JobApi, decode
from khala.judicator.leader_loop import LeaderLoop

log = logging.getLogger(__name__)


@dataclass
class _Job:
    """One job as a pass found it."""

    spec: JobSpec
    state: JobState  # its version is the stored one: every write is conditional on it
    runs: dict[int, RunView | None]
    foreign: dict[str, str]  # current run keys held by tasks it did not create → their ids
    cycle: list[str] | None  # a dependency cycle it lies on


class Scheduler(LeaderLoop):
    def __init__(self, jobs: JobApi, interval: float, unit: float,
                 is_leader: Callable[[], bool]) -> None:
        super().__init__("scheduler", interval, is_leader, lambda: self.run_pass(time.time()))
        self.jobs = jobs
        self.unit = unit  # seconds per cron minute: 60, or 1 with the test-only fast clock

    def run_pass(self, now: float) -> None:
        decoded = [decode(s) for s in self.jobs.store.jobs()]
        unstarted = {spec.name for spec, state in decoded
                     if not (state.started or state.blocked or state.stopping or state.deleted)}
        looped = cycles({spec.name: spec.deps for spec, _ in decoded}, unstarted)
        found = [_Job(spec, state, *self.jobs.survey(spec, state), looped.get(spec.name))
                 for spec, state in decoded]
        deps = {j.spec.name: dependency_view(j.spec, j.state, j.runs) for j in found}
        for job in found:
            if self.stopping() or not self.is_leader():
                return
            try:
                self._one(job, deps, now)
            except Exception:
                log.exception("job %s: scheduling failed; retrying next pass", job.spec.name)

    def _one(self, job: _Job, deps: dict[str, str], now: float) -> None:
        spec, state, runs = job.spec, job.state, job.runs
        if state.prune and not self._prune(spec, state):
            return  # changed meanwhile (restart, delete): the next pass re-reads it
        if state.stopping or state.deleted:
            self._drain(spec.name, state, now)
            return
        if job.foreign:
            self._block(spec.name, state, job.foreign)
            return
        missing = [i for i, run in runs.items() if run is None]
        if missing and not state.blocked:
            self.jobs.submit_runs(spec, state, missing)
            runs, foreign = self.jobs.survey(spec, state)
            if foreign:
                self._block(spec.name, state, foreign)
                return
        planned = plan(spec, state, runs, {d: deps.get(d, "missing") for d in spec.deps},
                       now, self.unit, self.jobs.bounds, job.cycle)
        new = planned.state
        new.last_start = max([state.last_start, *(r.add_time for r in runs.values() if r)])
        new.last_end = max([state.last_end,
                            *(r.report_time for r in runs.values() if r and r.done)])
        if new == state and not planned.start:
            return
        if not self._save(spec.name, new):
            return  # changed meanwhile (restart, delete): the next pass re-reads it
        if new.tick is not None and new.tick != state.tick and new.skipped_to > new.tick:
            log.warning("job %s: cron ticks missed: %d fires late, %d..%d skipped (only the "
                        "ones the expression matches)", spec.name, new.tick, new.tick + 1,
                        new.skipped_to)
        if planned.start:
            self.jobs.submit_runs(spec, new, planned.start)
            log.info("job %s: started run(s) of replica(s) %s", spec.name, planned.start)
        if new.blocked and not state.blocked:
            log.warning("job %s is blocked: %s", spec.name, new.blocked)

    def _save(self, name: str, state: JobState) -> bool:
        """Write `state` if the job is still at its version (then it has the next one)."""
        if not self.jobs.store.save_job(name, state.version, state_to_dict(state)):
            return False
        state.version += 1
        return True

    def _prune(self, spec: JobSpec, state: JobState) -> bool:
        """Remove the tasks of the past runs to prune (those done), and forget them."""
        left = [key for key in state.prune if not self.jobs.remove_run(spec, state, key)]
        if left == state.prune:
            return True
        state.prune = left
        return self._save(spec.name, state)

    def _block(self, name: str, state: JobState, foreign: dict[str, str]) -> None:
        if state.blocked:
            return
        key, task_id = next(iter(foreign.items()))
        state.blocked = (f"run key {key} is held by task {task_id}, which this job did not "
                         "create; restart the job to go on under new keys")
        if self._save(name, state):
            log.warning("job %s is blocked: %s", name, state.blocked)

    def _drain(self, name: str, state: JobState, now: float) -> None:
        left = []
        for task_id in state.stopping:
            task = self.jobs.store.get(task_id)
            if task is None or task.done:
                continue
            if now >= state.stop_deadline:
                log.info("job %s: run %s outlived the grace period; killing it", name, task_id)
                self.jobs.tasks.end(task_id)
                continue
            left.append(task_id)
        if not left and state.deleted:
            if self.jobs.store.delete_job(name, state.version):
                log.info("job %s deleted", name)
            return
        if left == state.stopping:
            return
        self._save(name, dataclasses.replace(state, stopping=left))
