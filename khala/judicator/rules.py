"""The report rules of the wire protocol as pure functions: what a report must record, update,
cancel and requeue, given what the store says the executor holds."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from khala.model import Language, Status, Task, TaskBrief
from khala.rules.lifecycle import FINISH, PROGRESS

#: A held task's report time (the reaper's liveness mark) and an executor's record are
#: rewritten by a report when older than this share of the expiry, even when nothing changed.
REFRESH_SHARE = 0.25


@dataclass
class ReportPlan:
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

    - Every completed task comes back in `cancel` so the executor forgets it (the store
      recorded it already, if the executor still held it; the service leaves out a result it
      could not write yet).
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


def needs_progress(stored: TaskBrief, status: Status, fresh_since: str) -> bool:
    """Whether a report must write a running task's progress: its status changed, or its
    stored report time is older than `fresh_since` (so the reaper never finds it silent while
    its executor reports)."""
    return stored.status != status or stored.report_time < fresh_since


class Touches:
    """When this judicator last wrote each executor's record (and with which languages): a
    report rewrites it only when new, changed, or older than the refresh interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: dict[str, tuple[float, tuple[tuple[str, str], ...]]] = {}

    def due(self, executor: str, languages: list[Language], every: float) -> bool:
        """Whether to write now; if so, it counts as written (a failed write raises out of
        the report, and the executor's next report tries again: call `forget` then)."""
        offered = tuple((x.name, x.version) for x in languages)
        now = time.monotonic()
        with self._lock:
            last = self._written.get(executor)
            if last is not None and last[1] == offered and now - last[0] < every:
                return False
            if len(self._written) > 100_000:  # bounded: executors come and go
                self._written.clear()
            self._written[executor] = (now, offered)
            return True

    def forget(self, executor: str) -> None:
        with self._lock:
            self._written.pop(executor, None)
