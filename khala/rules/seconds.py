"""Time limits in seconds: what a task may ask (fractions allowed) and what a step runs with
under the limits policy. Pure.

A task asks a wall-time `timeout` per step and an execute `cpu_limit`; 0 or none means "the
operator's default" (the seed API's "0 = no timeout" is kept as an accepted value and read that
way), and no step runs longer than the policy's maximum: a larger ask is capped, not refused,
so a seed client that sends a large timeout keeps working. docs/operations.md lists the
settings; docs/http-api.md and docs/api-v2.md say what a client sees.
"""

from __future__ import annotations

import math

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.model import INT_MAX

RESOLUTION = 0.001  # the smallest positive time limit: a millisecond


def is_seconds(value: object) -> bool:
    """A number of seconds a task may carry: finite, 0 or at least a millisecond, at most
    INT_MAX (what the wire's whole-second field can hold)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and (value == 0 or RESOLUTION <= value <= INT_MAX)


def check_seconds(name: str, value: object, optional: bool = False) -> None:
    """Raise InvalidInput naming `name` unless `value` is a valid number of seconds (or None
    when `optional`)."""
    if value is None and optional:
        return
    if not is_seconds(value):
        raise InvalidInput(f"{name} must be a number of seconds: 0 (the default) or from "
                           f"{RESOLUTION} to {INT_MAX}")


def parse_seconds(name: str, text: str | None) -> float:
    """Seconds as text ("2", "1.5", " 0.25 ") → a number; raises InvalidInput naming `name`."""
    if text is None:
        raise InvalidInput(f"{name} is required")
    try:
        value = float(text.strip())
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds, such as 2 or 1.5") from None
    check_seconds(name, value)
    return whole(value)


def whole(value: float) -> float:
    """`value` as an int when it has no fraction (so 2.0 reads back as 2)."""
    return int(value) if float(value).is_integer() else value


def wall_time(asked: float | None, policy: LimitSettings) -> float:
    """The wall seconds a step runs with: its ask, else the policy's default; at most the
    policy's maximum."""
    return min(float(asked or policy.default_timeout), float(policy.max_timeout))


def cpu_time(asked: float | None, policy: LimitSettings) -> float:
    """The CPU seconds an execute step runs with: its ask, else the policy's default; at most
    the policy's maximum."""
    return min(float(asked or policy.default_cpu_limit), float(policy.max_cpu_limit))


def wire_whole(value: float | None) -> int | None:
    """The whole-second field of the Thrift wire (an i32): rounded up, so a reader that knows
    only it never runs a step shorter than asked."""
    return None if value is None else math.ceil(value)


def wire_exact(value: float | None) -> float | None:
    """The exact-seconds field beside it: set only for a fraction, so whole values travel as
    they always did."""
    if value is None or float(value).is_integer():
        return None
    return float(value)


def from_wire(whole_seconds: int | None, exact: float | None) -> float | None:
    """The task's seconds from the two wire fields."""
    return exact if exact is not None else whole_seconds


def step_timeout_from_wire(whole_seconds: int | None, exact: float | None) -> float:
    """A step's timeout from the wire; -1 (refused by validation) when the field is missing."""
    if whole_seconds is None:
        return -1
    return exact if exact is not None else whole_seconds
