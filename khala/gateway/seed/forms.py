"""HTTP form and query arguments → domain model. All of the gateway's input validation, no IO.

The views hand in plain mappings (text fields) and the bytes of uploaded files; everything here
raises InvalidInput (result 4) or TooLarge (result 3) and is tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.model import INT_MAX, Compile, Execute, SearchQuery, Task, canonical_time, valid_id
from khala.rules.limits import (
    COMPILE_MEMORY,
    EXECUTE_CPU,
    EXECUTE_DISK,
    EXECUTE_MEMORY,
    EXECUTE_OUTPUT,
    EXECUTE_PIDS,
    TASK_LIMITS,
    TaskLimit,
    validate_task,
)
from khala.rules.seconds import parse_seconds
from khala.zipcheck import make_zip

DIGITS_RE = re.compile(r"[0-9]{1,20}")  # used with fullmatch

ZIP_FILES = ("compile_source", "execute_data")
TEXT_FILES = (
    "compile_command",
    "execute_input",
    "execute_command",
    "execute_standard",
    "compile_output",
    "compile_error",
    "execute_output",
    "execute_error",
)


def parse_int(name: str, text: str | None, low: int = 0, high: int = INT_MAX) -> int:
    """A decimal integer in low..high; raises InvalidInput for anything else (signs, blanks,
    floats, huge numbers)."""
    if text is None:
        raise InvalidInput(f"{name} is required")
    text = text.strip()
    if not DIGITS_RE.fullmatch(text):
        raise InvalidInput(f"{name} must be an integer between {low} and {high}")
    value = int(text)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer between {low} and {high}")
    return value


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if value is None:
        raise InvalidInput(f"{name} is required")
    return value


def _limits(form: Mapping[str, str]) -> dict[TaskLimit, float | None]:
    """The optional per-task limits (validation.TASK_LIMITS) as given: empty or absent → None,
    else an integer the wire can carry, or seconds for a time limit (the policy is checked by
    validate_task)."""
    values: dict[TaskLimit, float | None] = {}
    for limit in TASK_LIMITS:
        text = form.get(limit.field)
        if text is None or not text.strip():
            values[limit] = None
        elif limit.seconds:
            values[limit] = parse_seconds(limit.field, text)
        else:
            values[limit] = parse_int(limit.field, text, 1, limit.wire_max)
    return values


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def archive_field(form: Mapping[str, str], files: Mapping[str, bytes], prefix: str) -> bytes:
    """The zip of `prefix` (compile_source or execute_data): a non-empty upload wins; otherwise
    `<prefix>_name` + `<prefix>_str` make a one-file zip; neither given → no archive."""
    upload = files.get(prefix, b"")
    if upload:
        return upload
    name = form.get(prefix + "_name", "")
    content = form.get(prefix + "_str", "")
    if not name:
        if content:
            raise InvalidInput(f"{prefix}_str needs a {prefix}_name")
        return b""
    try:
        return make_zip(name, content)
    except InvalidInput as exc:
        raise InvalidInput(f"{prefix}_name: {exc}") from exc


def parse_task(form: Mapping[str, str], files: Mapping[str, bytes], policy: LimitSettings) -> Task:
    """A new task from the POST /api/task form, checked against the limits policy. Raises
    InvalidInput or TooLarge."""
    limits = _limits(form)
    task = Task(
        user=parse_int("user", form.get("user")),
        compile=Compile(
            source=archive_field(form, files, "compile_source"),
            command=_required(form, "compile_command"),
            timeout=parse_seconds("compile_timeout", form.get("compile_timeout")),
            memory_limit=_whole(limits[COMPILE_MEMORY]),
        ),
        execute=Execute(
            input=_required(form, "execute_input"),
            data=archive_field(form, files, "execute_data"),
            command=_required(form, "execute_command"),
            timeout=parse_seconds("execute_timeout", form.get("execute_timeout")),
            standard=_required(form, "execute_standard"),
            memory_limit=_whole(limits[EXECUTE_MEMORY]),
            cpu_limit=limits[EXECUTE_CPU],
            pids_limit=_whole(limits[EXECUTE_PIDS]),
            output_limit=_whole(limits[EXECUTE_OUTPUT]),
            disk_limit=_whole(limits[EXECUTE_DISK]),
        ),
    )
    validate_task(task, policy)
    return task


def parse_id(text: str | None) -> str:
    """A task id: exactly 24 lowercase hex characters."""
    if text is None or not valid_id(text):
        raise InvalidInput("id must be 24 lowercase hexadecimal characters")
    return text


def _given(args: Mapping[str, str], name: str) -> str | None:
    """An optional query argument; absent and empty are the same."""
    value = args.get(name)
    return value if value else None


def _time(args: Mapping[str, str], name: str) -> str | None:
    text = _given(args, name)
    if text is None:
        return None
    try:
        return canonical_time(text)
    except (ValueError, OverflowError) as exc:  # OverflowError: a UTC offset beyond year 9999
        raise InvalidInput(f"{name} is not a valid ISO 8601 time") from exc


def parse_search(args: Mapping[str, str]) -> SearchQuery:
    """The query of GET /api/task/list. Raises InvalidInput."""
    task_id = _given(args, "id")
    user = _given(args, "user")
    limit = _given(args, "limit")
    page = _given(args, "page")
    return SearchQuery(
        id=parse_id(task_id) if task_id is not None else None,
        user=parse_int("user", user) if user is not None else None,
        start_time=_time(args, "start_time"),
        end_time=_time(args, "end_time"),
        old_to_new=bool(args.get("old_to_new")),
        limit=parse_int("limit", limit) if limit is not None else 0,
        page=parse_int("page", page) if page is not None else 0,
    )


def parse_file(name: str | None) -> str | None:
    """The `file` argument of GET /api/task: None for the JSON answer, else a known file name.
    Raises InvalidInput for an unknown name."""
    if not name:
        return None
    if name not in ZIP_FILES and name not in TEXT_FILES:
        raise InvalidInput(f"unknown file {name!r}")
    return name
