"""The task life cycle: every change of a stored task's state, stated once. Pure data, no IO.

A task's state is five fields (`State`): done, status, executor, report_time, result. A
`Transition` says which states it may start from (`when`: a condition per field, some naming an
argument of the call such as the calling executor) and what it sets (`sets`). Selections
(`QUEUED`, `HELD`, `STALE`, `ACTIVE`) are conditions alone. Which queued
task `ASSIGN` takes first is khala/rules/dispatch.py's `fair_order` (priority, then fair share).

The stores never spell a condition out themselves: they `bind` a transition to the call's
arguments and translate the bound conditions and changes into one conditional update (SQL
WHERE/SET, a Mongo filter/$set), so every backend makes the same change from the same states.
`allows` and `apply` give the reference meaning of a bound transition on a `State`; the unit
tests check every transition with them.

    queued = undone, no executor, Pending or Retrying
    assign:   queued                    → executor = caller, Compiling, report_time = now
    progress: undone, held by caller    → status (Compiling/Running), report_time = now
    finish:   undone, held by caller    → done, status (a final one), result, report_time = now
    requeue:  undone, held by caller    → no executor, Retrying, report_time = now
    cancel:   undone                    → done, Cancelled, report_time = now (executor kept)
    keep:     Cancelled, no result yet, ran by caller → result (the output it had so far)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from khala.model import Result, Status


class Arg(StrEnum):
    """A value a transition takes from its call instead of stating it."""

    EXECUTOR = "executor"  # the executor making the call
    STATUS = "status"  # the status it reports
    RESULT = "result"  # the result it hands in
    NOW = "now"  # the time of the change
    BEFORE = "before"  # a time bound of a selection


@dataclass(frozen=True)
class Eq:
    """The field equals `value` (None: the field is empty)."""

    value: Any


@dataclass(frozen=True)
class OneOf:
    """The field is one of `values`."""

    values: frozenset[Status]


@dataclass(frozen=True)
class NotNone:
    """The field is set."""


@dataclass(frozen=True)
class Less:
    """The field is less than `value` (times compare as canonical strings)."""

    value: Any


Cond = Eq | OneOf | NotNone | Less


@dataclass(frozen=True)
class State:
    """The life-cycle fields of a task, as the store keeps them (same names as on Task)."""

    done: bool = False
    status: Status = Status.PENDING
    executor: str | None = None
    report_time: str = ""
    result: Result | None = None


FIELDS = frozenset(f.name for f in dataclasses.fields(State))


@dataclass(frozen=True)
class Bound:
    """A transition or selection with its arguments filled in: plain conditions and values."""

    where: Mapping[str, Cond]
    sets: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    """From which states (`when`) to which (`sets`); `Arg`s are filled in by `bind`.

    `accepts` and `fallback` (progress, finish) are the statuses a caller may set and what any
    other reported status becomes (see `status_for`)."""

    name: str
    when: Mapping[str, Cond]
    sets: Mapping[str, Any] = field(default_factory=dict)
    accepts: frozenset[Status] = frozenset()
    fallback: Status | None = None

    def args(self) -> frozenset[Arg]:
        """The arguments `bind` needs."""
        values = [*self.sets.values(), *(getattr(c, "value", None) for c in self.when.values())]
        return frozenset(v for v in values if isinstance(v, Arg))

    def bind(self, **args: Any) -> Bound:
        """Fill in the arguments (by Arg value: executor=…, now=…). Raises TypeError when one is
        missing or unknown."""
        needed = {a.value for a in self.args()}
        if set(args) != needed:
            raise TypeError(f"{self.name} takes {sorted(needed)}, got {sorted(args)}")

        def fill(value: Any) -> Any:
            return args[value.value] if isinstance(value, Arg) else value

        def fill_cond(cond: Cond) -> Cond:
            if isinstance(cond, Eq):
                return Eq(fill(cond.value))
            if isinstance(cond, Less):
                return Less(fill(cond.value))
            return cond

        where = {name: fill_cond(cond) for name, cond in self.when.items()}
        return Bound(where=where, sets={name: fill(v) for name, v in self.sets.items()})

    def status_for(self, reported: int) -> Status:
        """The status recorded for a reported one: itself if accepted, else the fallback."""
        if self.fallback is None:
            raise TypeError(f"{self.name} takes no reported status")
        return Status(reported) if reported in self.accepts else self.fallback


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
TRANSITIONS = (ASSIGN, PROGRESS, FINISH, REQUEUE, CANCEL, KEEP)


def select(when: Mapping[str, Cond], **args: Any) -> Mapping[str, Cond]:
    """The conditions of a selection (QUEUED, HELD, STALE) with its arguments filled in."""
    return Transition("select", when=when).bind(**args).where


# ----------------------------------------------------------------------------- meaning


def matches(cond: Cond, value: Any) -> bool:
    """Whether a field holding `value` meets bound condition `cond`."""
    if isinstance(cond, Eq):
        return bool(value is None if cond.value is None else value == cond.value)
    if isinstance(cond, OneOf):
        return value in cond.values
    if isinstance(cond, NotNone):
        return value is not None
    return bool(value < cond.value)


def allows(where: Mapping[str, Cond], state: State) -> bool:
    """Whether `state` meets every bound condition."""
    return all(matches(cond, getattr(state, name)) for name, cond in where.items())


def apply(bound: Bound, state: State) -> State | None:
    """The state after `bound`, or None when it does not apply to `state`."""
    if not allows(bound.where, state):
        return None
    return dataclasses.replace(state, **bound.sets)
