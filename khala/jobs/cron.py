"""A 5-field cron expression (minute hour day-of-month month day-of-week), parsed and matched.
Pure; no IO, no clock.

Fields accept `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b-c`, and the names
jan..dec and sun..sat. Day of week is 0..7 (0 and 7 are Sunday). As in Vixie cron, when both
day of month and day of week are restricted, a day matching either one matches.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

DEFAULT = "* * * * *"
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, low, high, names whose index + low is their value)
FIELDS = [
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
]
# The longest gap between two matches of any valid expression (Feb 29 on a Monday, and
# back-to-back leap years skip 2100): searching further means the expression never matches.
SEARCH_MINUTES = 60 * 24 * 366 * 29


class CronError(ValueError):
    """The expression is not a valid 5-field cron expression (the message says why)."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    def matches(self, moment: _dt.datetime) -> bool:
        """Whether the minute of `moment` is a tick."""
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        return moment.month in self.months and self._day_ok(moment)

    def latest(self, moment: _dt.datetime, limit_minutes: int) -> _dt.datetime | None:
        """The latest tick at or before `moment` (to the minute), looking back at most
        `limit_minutes`; None when there is none in that window."""
        tick = moment.replace(second=0, microsecond=0)
        for _ in range(max(0, limit_minutes) + 1):
            if self.matches(tick):
                return tick
            tick -= _dt.timedelta(minutes=1)
        return None

    def next_after(self, moment: _dt.datetime) -> _dt.datetime:
        """The first tick strictly after `moment`. Raises CronError if there is none."""
        tick = moment.replace(second=0, microsecond=0) + _dt.timedelta(minutes=1)
        day = _dt.timedelta(days=1)
        horizon = tick + _dt.timedelta(minutes=SEARCH_MINUTES)
        for _ in range(SEARCH_MINUTES):
            if tick > horizon:
                break
            if tick.month not in self.months or not self._day_ok(tick):
                tick = (tick + day).replace(hour=0, minute=0)  # skip the whole day
                continue
            if tick.hour not in self.hours:
                tick = tick.replace(minute=0) + _dt.timedelta(hours=1)
                continue
            if tick.minute in self.minutes:
                return tick
            tick += _dt.timedelta(minutes=1)
        raise CronError("the expression never matches")

    def _day_ok(self, moment: _dt.datetime) -> bool:
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def _number(text: str, low: int, high: int, names: list[str], field: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (low if names is MONTHS else 0)
    if not text.isdigit():
        raise CronError(f"{field}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{field}: {value} is outside {low}..{high}")
    return value


def _field(text: str, low: int, high: int, names: list[str], field: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            start, end = (_number(a, low, high, names, field), _number(b, low, high, names, field))
            if start > end:
                raise CronError(f"{field}: range {span!r} runs backwards")
        else:
            start = _number(span, low, high, names, field)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse(expression: str) -> Cron:
    """Parse a 5-field expression. Raises CronError with the reason."""
    if not isinstance(expression, str):
        raise CronError("a cron expression is a string")
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"a cron expression has 5 fields, {expression!r} has {len(parts)}")
    sets = []
    for text, (field, low, high, names) in zip(parts, FIELDS, strict=True):
        if not text or any(p == "" for p in text.split(",")):
            raise CronError(f"{field}: empty list item in {text!r}")
        sets.append(_field(text, low, high, names, field))
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )
