"""The report rules of the wire protocol as pure functions: what a report must record, update,
cancel and requeue, given what the store says the executor holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from khala.lifecycle import FINISH, PROGRESS
from khala.model import Status, Task, TaskBrief


@dataclass
class ReportPlan:
    record: list[Task] = field(default_factory=list)  # finished tasks still held: record them
    progress: list[TaskBrief] = field(default_factory=list)  # running tasks still held
    cancel: list[str] = field(default_factory=list)  # ids the executor must stop/forget
    lost: list[str] = field(default_factory=list)  # held but not mentioned: requeue


def final_status(status: int) -> Status:
    """A finished task's status as recorded: anything not a final executor status is an
    internal failure (Unknown error). See lifecycle.FINISH."""
    return FINISH.status_for(status)


def progress_status(status: int) -> Status:
    """A running task's reported status: Compiling or Running; anything else reads Compiling.
    See lifecycle.PROGRESS."""
    return PROGRESS.status_for(status)


def plan_report(held: set[str], complete: list[Task], executing: list[TaskBrief]) -> ReportPlan:
    """Decide what one report does.

    - Every completed task comes back in `cancel` so the executor forgets it; it is recorded
      only if the executor still holds it.
    - A running task the executor no longer holds comes back in `cancel`.
    - A held task mentioned in neither list is lost and goes back to the queue.
    """
    plan = ReportPlan()
    seen: set[str] = set()
    for task in complete:
        if task.id in seen:
            continue
        seen.add(task.id)
        plan.cancel.append(task.id)
        if task.id in held:
            plan.record.append(task)
    for brief in executing:
        if brief.id in seen:
            continue
        seen.add(brief.id)
        if brief.id in held:
            plan.progress.append(brief)
        else:
            plan.cancel.append(brief.id)
    plan.lost = sorted(held - seen)
    return plan
