"""The limits policy applied to a task: validation of a new task, shared by the gateway (HTTP
forms) and the judicator (Thrift add), and the clamping of the executor.

The policy is one settings group, `khala.config.LimitSettings`, in every node's settings. Pure:
no Flask, no IO. Raises InvalidInput (result 4) or TooLarge (result 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

from khala.config import LimitSettings
from khala.errors import InvalidInput, TooLarge
from khala.judging.validate import check_judging
from khala.model import INT_MAX, PRIORITY_MAX, PRIORITY_MIN, Task, task_size, valid_int
from khala.rules import identity
from khala.rules.options import check_task_options
from khala.rules.seconds import RESOLUTION, check_seconds, is_seconds
from khala.zipcheck import check_zip

BYTES_LIMIT_MAX = 2**62  # memory, output and disk limits are byte counts; i64 on the wire


@dataclass(frozen=True)
class TaskLimit:
    """One optional limit a task may ask: where the task holds it, which policy setting bounds
    it and the most the wire can carry."""

    part: str  # "compile" or "execute"
    name: str  # the attribute of that part, e.g. "memory_limit"
    bound: str  # the LimitSettings field with the largest value allowed
    wire_max: int
    seconds: bool = False  # a number of seconds (fractions allowed), else a whole count

    @property
    def field(self) -> str:
        """The HTTP form field, e.g. execute_memory_limit."""
        return f"{self.part}_{self.name}"

    def asked(self, task: Task) -> int | None:
        value: int | None = getattr(getattr(task, self.part), self.name)
        return value

    def largest(self, policy: LimitSettings) -> int:
        value: int = getattr(policy, self.bound)
        return value

    @overload
    def clamp(self, task: Task, policy: LimitSettings, default: int) -> int: ...

    @overload
    def clamp(self, task: Task, policy: LimitSettings, default: None) -> int | None: ...

    def clamp(self, task: Task, policy: LimitSettings, default: int | None) -> int | None:
        """What a step runs with: the task's ask, at most the policy's largest; `default` when
        the task asked nothing."""
        return self.within(self.asked(task), policy, default)

    @overload
    def within(self, asked: int | None, policy: LimitSettings, default: int) -> int: ...

    @overload
    def within(self, asked: int | None, policy: LimitSettings, default: None) -> int | None: ...

    def within(self, asked: int | None, policy: LimitSettings, default: int | None
              ) -> int | None:
        """Any ask of this limit (the task's, or one of its judging cases'): at most the
        policy's largest; `default` when nothing (or 0) was asked."""
        return min(asked, self.largest(policy)) if asked else default


COMPILE_MEMORY = TaskLimit("compile", "memory_limit", "max_memory_limit", BYTES_LIMIT_MAX)
EXECUTE_MEMORY = TaskLimit("execute", "memory_limit", "max_memory_limit", BYTES_LIMIT_MAX)
EXECUTE_CPU = TaskLimit("execute", "cpu_limit", "max_cpu_limit", INT_MAX, seconds=True)
EXECUTE_PIDS = TaskLimit("execute", "pids_limit", "max_pids_limit", INT_MAX)
EXECUTE_OUTPUT = TaskLimit("execute", "output_limit", "max_output_limit", BYTES_LIMIT_MAX)
# The run's work area (khala/sandbox/workarea.py): bytes its files may take in all.
EXECUTE_DISK = TaskLimit("execute", "disk_limit", "max_disk_limit", BYTES_LIMIT_MAX)
TASK_LIMITS = (COMPILE_MEMORY, EXECUTE_MEMORY, EXECUTE_CPU, EXECUTE_PIDS, EXECUTE_OUTPUT,
               EXECUTE_DISK)
# A core file the execute step may write in its work area (none unless asked; not a field of
# the seed API's form).
EXECUTE_CORE = TaskLimit("execute", "core_limit", "max_core_limit", BYTES_LIMIT_MAX)


def _check_int(name: str, value: object) -> None:
    if not valid_int(value):
        raise InvalidInput(f"{name} must be an integer between 0 and {INT_MAX}")


def _check_limit(name: str, value: object, maximum: int, seconds: bool = False) -> None:
    if value is None:
        return
    if seconds:
        if not is_seconds(value) or not 0 < value <= maximum:  # type: ignore[operator]
            raise InvalidInput(f"{name} must be a number of seconds from {RESOLUTION} to "
                               f"{maximum}")
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise InvalidInput(f"{name} must be an integer between 1 and {maximum}")


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text")


def _check_blob(name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise InvalidInput(f"{name} must be bytes")


def check_limits(task: Task, policy: LimitSettings) -> None:
    """The optional per-task limits: absent, or positive and within the policy."""
    for limit in (*TASK_LIMITS, EXECUTE_CORE):
        _check_limit(limit.field, limit.asked(task), limit.largest(policy), limit.seconds)


def validate_task(task: Task, policy: LimitSettings) -> None:
    """Raise InvalidInput or TooLarge unless `task` may be accepted as a new task."""
    if task.compile is None or task.execute is None:
        raise InvalidInput("a task needs both a compile and an execute part")
    _check_int("user", task.user)
    if not PRIORITY_MIN <= task.priority <= PRIORITY_MAX:
        raise InvalidInput(f"priority must be within {PRIORITY_MIN}..{PRIORITY_MAX}")
    check_seconds("compile_timeout", task.compile.timeout)
    check_seconds("execute_timeout", task.execute.timeout)
    for name, text in (
        ("compile_command", task.compile.command),
        ("execute_input", task.execute.input),
        ("execute_command", task.execute.command),
        ("execute_standard", task.execute.standard),
    ):
        _check_text(name, text)
    _check_blob("compile_source", task.compile.source)
    _check_blob("execute_data", task.execute.data)
    check_limits(task, policy)
    check_task_options(task, policy)
    identity.check_task(task, identity.parse(policy.run_users, policy.run_groups))
    check_judging(task, policy)
    size = task_size(task)
    if size > policy.max_task_size:
        raise TooLarge(f"task is {size} bytes, more than the limit of {policy.max_task_size}")
    for field, archive in (("compile_source", task.compile.source),
                           ("execute_data", task.execute.data)):
        try:
            check_zip(archive, policy.zip_max_bytes, policy.zip_max_files)
        except TooLarge as exc:
            raise TooLarge(f"{field}: {exc}") from exc
        except InvalidInput as exc:
            raise InvalidInput(f"{field}: {exc}") from exc
