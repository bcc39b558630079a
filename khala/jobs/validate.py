"""Whether a job may be created: its fields within the bounds of khala/jobs/model.py, its cron
expression readable, its task template a valid task under the limits policy. Pure."""

from __future__ import annotations

import dataclasses
import datetime as _dt

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.jobs.cron import CronError, parse
from khala.jobs.model import (
    MAX_DEPS,
    MAX_INTERVAL,
    MAX_REPLICA,
    MAX_RETRY_ATTEMPTS,
    MAX_RETRY_BACKOFF,
    NAME_RE,
    TYPES,
    JobSpec,
)
from khala.rules.limits import validate_task


def _number(name: str, value: object, top: int, unit: str = "", integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 <= value <= top:
        raise InvalidInput(f"{name} must be within 0..{top}{unit}")


def validate_spec(spec: JobSpec, policy: LimitSettings) -> None:
    """Raise InvalidInput naming the first bad field."""
    if not isinstance(spec.name, str) or not NAME_RE.match(spec.name):
        raise InvalidInput("name must be 1 to 32 of A-Z a-z 0-9 _ -")
    if spec.type not in TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TYPES)}")
    if isinstance(spec.replica, bool) or not isinstance(spec.replica, int) or not (
        1 <= spec.replica <= MAX_REPLICA
    ):
        raise InvalidInput(f"replica must be within 1..{MAX_REPLICA}")
    if not isinstance(spec.cron, str):
        raise InvalidInput("cron must be text")
    try:
        parse(spec.cron).next_after(_dt.datetime(2000, 1, 1))
    except CronError as exc:
        raise InvalidInput(f"cron: {exc}") from exc
    _number("interval", spec.interval, MAX_INTERVAL, " seconds")
    deps = spec.deps
    if not isinstance(deps, list) or len(deps) > MAX_DEPS or any(
        not isinstance(d, str) or not NAME_RE.match(d) for d in deps
    ):
        raise InvalidInput(f"deps must be at most {MAX_DEPS} job names")
    if spec.name in deps:
        raise InvalidInput("a job cannot depend on itself")
    _number("retry attempts", spec.retry_attempts, MAX_RETRY_ATTEMPTS, integer=True)
    _number("retry backoff", spec.retry_backoff, MAX_RETRY_BACKOFF, " seconds")
    if not isinstance(spec.meta, dict):
        raise InvalidInput("meta must be an object")
    validate_task(dataclasses.replace(spec.template, key=None), policy)
