"""The task life cycle: every change of a stored task's state, stated once. Pure data, no IO.

A task's state is five fields (`State`): done, status, executor, report_time, result. A
`Transition` says which states it may start from (`when`: a condition per field, some naming an
argument of the call such as the calling executor) and what it sets (`sets`). Selections
(`QUEUED`, `HELD`, `STALE`, `ACTIVE`) are conditions alone. Which queued
task `ASSIGN` takes first is khala/rules/dispatch.py's `fair_order` (priority, then fair share).

The vocabulary (conditions, transitions, `bind`, `allows`, `apply`) is khala/rules/states.py's:
the stores translate each bound transition into one conditional update, so every backend makes
the same change from the same states.

    queued = undone, no executor, Pending or Retrying
    assign:   queued                    → executor = caller, Compiling, report_time = now
    progress: undone, held by caller    → status (Compiling/Running), report_time = now
    finish:   undone, held by caller    → done, status (a final one), result, report_time = now
    requeue:  undone, held by caller    → no executor, Retrying, report_time = now
    cancel:   undone                    → done, Cancelled, report_time = now (executor kept)
    keep:     Cancelled, no result yet, ran by caller → result (the output it had so far)
    rejudge:  done, judged to its end   → undone, Pending, no executor, no result, report_time
"""


from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from khala.model import Result, Status
from khala.rules.states import (
    Arg,
    AtMost,
    Bound,
    Cond,
    Eq,
    Less,
    NotNone,
    OneOf,
    Transition,
    allows,
    apply,
    matches,
)

__all__ = [
    "Arg", "AtMost", "Bound", "Cond", "Eq", "Less", "NotNone", "OneOf", "State", "Transition",
    "OPERATOR_ONLY", "allows", "apply", "is_final", "matches", "select",
]


@dataclass(frozen=True)
class State:
    """The life-cycle fields of a task, as the store keeps them (same names as on Task)."""

    done: bool = False
    status: Status = Status.PENDING
    executor: str | None = None
    report_time: str = ""
    result: Result | None = None


FIELDS = frozenset(f.name for f in dataclasses.fields(State))


# ----------------------------------------------------------------------------- the life cycle

QUEUED_STATUSES = frozenset({Status.PENDING, Status.RETRYING})
ACTIVE_STATUSES = frozenset({Status.COMPILING, Status.RUNNING})
# What an executor may hand in as a finished task's status (Cancelled only comes from cancel).
REPORTABLE_FINAL = frozenset(
    {Status.COMPILE_FAILED, Status.RUN_FAILED, Status.SUCCESS, Status.UNKNOWN_ERROR}
)

UNDONE: Mapping[str, Cond] = {"done": Eq(False)}
QUEUED: Mapping[str, Cond] = {**UNDONE, "executor": Eq(None), "status": OneOf(QUEUED_STATUSES)}
HELD: Mapping[str, Cond] = {**UNDONE, "executor": Eq(Arg.EXECUTOR)}
STALE: Mapping[str, Cond] = {**UNDONE, "executor": NotNone(), "report_time": Less(Arg.BEFORE)}
# Held by some executor (compiling or running): what fair dispatch counts per user.
ACTIVE: Mapping[str, Cond] = {**UNDONE, "executor": NotNone()}

ASSIGN = Transition(
    "assign",
    when=QUEUED,
    sets={"executor": Arg.EXECUTOR, "status": Status.COMPILING, "report_time": Arg.NOW},
)
PROGRESS = Transition(
    "progress",
    when=HELD,
    sets={"status": Arg.STATUS, "report_time": Arg.NOW},
    accepts=ACTIVE_STATUSES,
    fallback=Status.COMPILING,
)
FINISH = Transition(  # the executor stays: it names who ran the task
    "finish",
    when=HELD,
    sets={"done": True, "status": Arg.STATUS, "result": Arg.RESULT, "report_time": Arg.NOW},
    accepts=REPORTABLE_FINAL,
    fallback=Status.UNKNOWN_ERROR,
)
REQUEUE = Transition(
    "requeue",
    when=HELD,
    sets={"executor": None, "status": Status.RETRYING, "report_time": Arg.NOW},
)
CANCEL = Transition(  # the executor stays: it names who ran the task, and may still hand in
    "cancel",          # the output its run had when it was stopped (KEEP)
    when=UNDONE,
    sets={"done": True, "status": Status.CANCELLED, "report_time": Arg.NOW},
)
KEEP = Transition(  # a cancelled task keeps the output it had: the stopped run's result
    "keep",
    when={"done": Eq(True), "status": Eq(Status.CANCELLED), "executor": Eq(Arg.EXECUTOR),
          "result": Eq(None)},
    sets={"result": Arg.RESULT},
)
# A rejudge (docs/judging.md) queues a task judged to its end (not a cancelled one) again.
JUDGED: Mapping[str, Cond] = {"done": Eq(True), "status": OneOf(REPORTABLE_FINAL)}
REJUDGE = Transition(
    "rejudge",
    when=JUDGED,
    sets={"done": False, "status": Status.PENDING, "executor": None, "result": None,
          "report_time": Arg.NOW},
)
TRANSITIONS = (ASSIGN, PROGRESS, FINISH, REQUEUE, CANCEL, KEEP, REJUDGE)


#: Transitions only an operator starts on a done task (a rejudge of a problem's tasks); what
#: a gateway keeps in memory (is_final) is bounded in time against them, as against a delete.
OPERATOR_ONLY = (REJUDGE,)


def is_final(state: Any) -> bool:
    """Whether no transition but an operator's (OPERATOR_ONLY) can change `state` any more (a
    Task or a State): done, and not a cancelled run that may still hand in its output (KEEP:
    ran on an executor, no result)."""
    if not state.done:
        return False
    return not (state.status == Status.CANCELLED and state.executor is not None
                and state.result is None)


def select(when: Mapping[str, Cond], **args: Any) -> Mapping[str, Cond]:
    """The conditions of a selection (QUEUED, HELD, STALE) with its arguments filled in."""
    return Transition("select", when=when).bind(**args).where
