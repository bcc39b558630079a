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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from khala.jobs.model import JobSpec, JobState, RunView, state_to_dict
from khala.jobs.plan import dependency_view, plan
from khala.judicator.jobs import JobApi, decode
from khala.judicator.leader_loop import LeaderLoop
from khala.store.base import StoredJob

log = logging.getLogger(__name__)


class Scheduler(LeaderLoop):
    def __init__(self, jobs: JobApi, interval: float, unit: float,
                 is_leader: Callable[[], bool]) -> None:
        super().__init__("scheduler", interval, is_leader, lambda: self.run_pass(time.time()))
        self.jobs = jobs
        self.unit = unit  # seconds per cron minute: 60, or 1 with the test-only fast clock

    def run_pass(self, now: float) -> None:
        stored = self.jobs.store.jobs()
        decoded = [(s, *decode(s)) for s in stored]
        runs = {spec.name: self.jobs.observe(spec, state) for _, spec, state in decoded}
        deps = {spec.name: dependency_view(spec, state, runs[spec.name])
                for _, spec, state in decoded}
        for record, spec, state in decoded:
            if self.stopping() or not self.is_leader():
                return
            try:
                self._one(record, spec, state, runs[spec.name], deps, now)
            except Exception:
                log.exception("job %s: scheduling failed; retrying next pass", spec.name)

    def _one(self, record: StoredJob, spec: JobSpec, state: JobState,
             runs: dict[int, RunView | None], deps: dict[str, str], now: float) -> None:
        if state.stopping or state.deleted:
            self._drain(record, state, now)
            return
        missing = [i for i, run in runs.items() if run is None]
        if missing:
            self.jobs.submit_runs(spec, state, missing)
            runs = self.jobs.observe(spec, state)
        planned = plan(spec, state, runs, {d: deps.get(d, "missing") for d in spec.deps},
                       now, self.unit)
        new = planned.state
        new.last_start = max([state.last_start, *(r.add_time for r in runs.values() if r)])
        new.last_end = max([state.last_end,
                            *(r.report_time for r in runs.values() if r and r.done)])
        if new == state and not planned.start:
            return
        if not self.jobs.store.save_job(spec.name, record.version, state_to_dict(new)):
            return  # changed meanwhile (restart, delete): the next pass re-reads it
        new.version = record.version + 1
        if planned.start:
            self.jobs.submit_runs(spec, new, planned.start)
            log.info("job %s: started run(s) of replica(s) %s", spec.name, planned.start)

    def _drain(self, record: StoredJob, state: JobState, now: float) -> None:
        left = []
        for task_id in state.stopping:
            task = self.jobs.store.get(task_id)
            if task is None or task.done:
                continue
            if now >= state.stop_deadline:
                log.info("job %s: run %s outlived the grace period; killing it",
                         record.name, task_id)
                self.jobs.tasks.end(task_id)
                continue
            left.append(task_id)
        if not left and state.deleted:
            if self.jobs.store.delete_job(record.name, record.version):
                log.info("job %s deleted", record.name)
            return
        if left == state.stopping:
            return
        state.stopping = left
        self.jobs.store.save_job(record.name, record.version, state_to_dict(state))
