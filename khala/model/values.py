"""Ids, client keys and times of the domain model: how they are made, checked and written."""

from __future__ import annotations

import datetime as _dt
import re
import secrets

from khala.model.codes import INT_MAX

ID_RE = re.compile(r"\A[0-9a-f]{24}\Z")  # \Z: "$" would accept a trailing newline


TIME_FORMAT = "%04Y-%m-%dT%H:%M:%S.%f"  # years zero-padded: times compare as strings


KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")


#: The most tasks one page of the task list holds (API v2 and the judicator both read it).
MAX_PAGE = 1000


def new_id() -> str:
    """A new task (or executor record) id: 12 random bytes in hex — the 24 hex digits of a
    MongoDB ObjectId, the store's `_id`, but with nothing in it to guess from (an ObjectId's
    time, process and counter make the next id the previous one + 1). Ids say nothing of
    order: what is ordered is ordered by add time."""
    return secrets.token_hex(12)


def valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.match(value) is not None


def valid_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT_MAX


def valid_key(value: object) -> bool:
    """A client-chosen task id (API v2): 1..64 of A-Z a-z 0-9 . _ -"""
    return isinstance(value, str) and KEY_RE.match(value) is not None


def now() -> str:
    """The current UTC time in the canonical ISO form with microseconds."""
    return format_time(_dt.datetime.now(_dt.UTC).replace(tzinfo=None))


def format_time(value: _dt.datetime) -> str:
    return value.strftime(TIME_FORMAT)


def parse_time(text: str) -> _dt.datetime:
    """Parse an ISO 8601 time; aware times are converted to naive UTC. Raises ValueError."""
    value = _dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC).replace(tzinfo=None)
    return value


def canonical_time(text: str) -> str:
    """Any valid ISO 8601 time → the canonical stored form. Raises ValueError."""
    return format_time(parse_time(text))


def time_before(seconds: float) -> str:
    moment = _dt.datetime.now(_dt.UTC).replace(tzinfo=None) - _dt.timedelta(seconds=seconds)
    return format_time(moment)


def page_count(total: int, limit: int) -> int:
    """Pages of a search: 0 when nothing matched, 1 when unlimited, else ceil(total/limit)."""
    if total == 0:
        return 0
    if limit == 0:
        return 1
    return -(-total // limit)
