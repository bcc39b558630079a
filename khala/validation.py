"""Validation of a new task, shared by the gateway (HTTP forms) and the judicator (Thrift add).

Pure: no Flask, no IO. Raises InvalidInput (result 4) or TooLarge (result 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from khala.errors import InvalidInput, TooLarge
from khala.model import INT_MAX, Task, task_size, valid_int
from khala.zipcheck import check_zip

BYTES_LIMIT_MAX = 2**62  # memory and output limits are byte counts; i64 on the wire


@dataclass(frozen=True)
class Maxima:
    """The largest per-task limits accepted; the defaults are what the wire can carry."""

    memory: int = BYTES_LIMIT_MAX
    cpu: int = INT_MAX
    pids: int = INT_MAX
    output: int = BYTES_LIMIT_MAX


def _check_int(name: str, value: object) -> None:
    if not valid_int(value):
        raise InvalidInput(f"{name} must be an integer between 0 and {INT_MAX}")


def _check_limit(name: str, value: object, maximum: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise InvalidInput(f"{name} must be an integer between 1 and {maximum}")


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text")


def _check_blob(name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise InvalidInput(f"{name} must be bytes")


def check_limits(task: Task, maxima: Maxima | None = None) -> None:
    """The optional per-task limits: absent, or positive and within `maxima`."""
    m = maxima or Maxima()
    _check_limit("compile memory_limit", task.compile.memory_limit, m.memory)
    _check_limit("execute memory_limit", task.execute.memory_limit, m.memory)
    _check_limit("execute cpu_limit", task.execute.cpu_limit, m.cpu)
    _check_limit("execute pids_limit", task.execute.pids_limit, m.pids)
    _check_limit("execute output_limit", task.execute.output_limit, m.output)


def validate_task(
    task: Task,
    max_task_size: int,
    zip_max_bytes: int,
    zip_max_files: int,
    maxima: Maxima | None = None,
) -> None:
    """Raise InvalidInput or TooLarge unless `task` may be accepted as a new task."""
    if task.compile is None or task.execute is None:
        raise InvalidInput("a task needs both a compile and an execute part")
    _check_int("user", task.user)
    _check_int("compile timeout", task.compile.timeout)
    _check_int("execute timeout", task.execute.timeout)
    for name, text in (
        ("compile command", task.compile.command),
        ("execute input", task.execute.input),
        ("execute command", task.execute.command),
        ("execute standard", task.execute.standard),
    ):
        _check_text(name, text)
    _check_blob("compile source", task.compile.source)
    _check_blob("execute data", task.execute.data)
    check_limits(task, maxima)
    size = task_size(task)
    if size > max_task_size:
        raise TooLarge(f"task is {size} bytes, more than the limit of {max_task_size}")
    check_zip(task.compile.source, zip_max_bytes, zip_max_files)
    check_zip(task.execute.data, zip_max_bytes, zip_max_files)
