"""The vocabulary of a stored record's state machine: conditions on its fields, transitions from
some states to others, their binding to a call's arguments and their meaning. Pure data, no IO.

A `Transition` says which states it may start from (`when`: a condition per field, some naming
an argument of the call such as the calling executor) and what it sets (`sets`). The stores
never spell a condition out themselves: they `bind` a transition to the call's arguments and
translate the bound conditions and changes into one conditional update (SQL WHERE/SET, a Mongo
filter/$set), so every backend makes the same change from the same states. `allows` and `apply`
give the reference meaning of a bound transition on a state (any dataclass holding the fields);
the unit tests check every transition with them.

State machines stated with it: the task life cycle (khala/rules/lifecycle.py) and the delivery
of webhooks (khala/rules/webhooks.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from khala.model import Status


class Arg(StrEnum):
    """A value a transition takes from its call instead of stating it."""

    EXECUTOR = "executor"  # the executor making the call
    STATUS = "status"  # the status it reports
    RESULT = "result"  # the result it hands in
    NOW = "now"  # the time of the change
    BEFORE = "before"  # a time bound of a selection
    UNTIL = "until"  # the end of a lease the change takes


@dataclass(frozen=True)
class Eq:
    """The field equals `value` (None: the field is empty)."""

    value: Any


@dataclass(frozen=True)
class OneOf:
    """The field is one of `values`."""

    values: frozenset[Any]


@dataclass(frozen=True)
class NotNone:
    """The field is set."""


@dataclass(frozen=True)
class Less:
    """The field is less than `value` (times compare as canonical strings)."""

    value: Any


@dataclass(frozen=True)
class AtMost:
    """The field is at most `value`."""

    value: Any


Cond = Eq | OneOf | NotNone | Less | AtMost


@dataclass(frozen=True)
class Bound:
    """A transition or selection with its arguments filled in: plain conditions and values."""

    where: Mapping[str, Cond]
    sets: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    """From which states (`when`) to which (`sets`); `Arg`s are filled in by `bind`.

    `accepts` and `fallback` (a task's progress and finish) are the statuses a caller may set
    and what any other reported status becomes (see `status_for`)."""

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
            if isinstance(cond, Eq | Less | AtMost):
                return type(cond)(fill(cond.value))
            return cond

        where = {name: fill_cond(cond) for name, cond in self.when.items()}
        return Bound(where=where, sets={name: fill(v) for name, v in self.sets.items()})

    def status_for(self, reported: int) -> Status:
        """The status recorded for a reported one: itself if accepted, else the fallback."""
        if self.fallback is None:
            raise TypeError(f"{self.name} takes no reported status")
        return Status(reported) if reported in self.accepts else self.fallback


def check_fields(names: Any, fields: frozenset[str], what: str) -> None:
    """Raise ValueError for a name that is not one of the machine's `fields`."""
    for name in names:
        if name not in fields:
            raise ValueError(f"{name!r} is not a {what} field")


# ----------------------------------------------------------------------------- meaning


def matches(cond: Cond, value: Any) -> bool:
    """Whether a field holding `value` meets bound condition `cond`."""
    if isinstance(cond, Eq):
        return bool(value is None if cond.value is None else value == cond.value)
    if isinstance(cond, OneOf):
        return value in cond.values
    if isinstance(cond, NotNone):
        return value is not None
    if isinstance(cond, AtMost):
        return bool(value <= cond.value)
    return bool(value < cond.value)


def allows(where: Mapping[str, Cond], state: Any) -> bool:
    """Whether `state` (a dataclass holding the fields) meets every bound condition."""
    return all(matches(cond, getattr(state, name)) for name, cond in where.items())


def apply(bound: Bound, state: Any) -> Any:
    """The state after `bound`, or None when it does not apply to `state`."""
    if not allows(bound.where, state):
        return None
    return dataclasses.replace(state, **bound.sets)
