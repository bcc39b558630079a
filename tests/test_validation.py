"""The limits policy: validate_task (ints, limits, sizes and zips of a new task) and the
per-task limits table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from khala.config import (
    ExecutorSettings,
    GatewaySettings,
    JudicatorSettings,
    LimitSettings,
)
from khala.errors import InvalidInput, TooLarge
from khala.model import INT_MAX, Compile, Execute, Task, task_size
from khala.rules.limits import BYTES_LIMIT_MAX, TASK_LIMITS, validate_task
from khala.zipcheck import make_zip

# What the wire can carry: the policy of the boundary tests.
WIDE = LimitSettings(
    max_memory_limit=BYTES_LIMIT_MAX,
    max_cpu_limit=INT_MAX,
    max_pids_limit=INT_MAX,
    max_output_limit=BYTES_LIMIT_MAX,
    max_disk_limit=BYTES_LIMIT_MAX,
    max_task_size=16252928,
    zip_max_bytes=1 << 20,
    zip_max_files=10,
)


def make_task(**compile_or_execute: Any) -> Task:
    compile_fields = {k[2:]: v for k, v in compile_or_execute.items() if k.startswith("c_")}
    execute_fields = {k[2:]: v for k, v in compile_or_execute.items() if k.startswith("e_")}
    user = compile_or_execute.get("user", 1)
    compile_args: dict[str, Any] = {
        "source": make_zip("main.c", "int main(){}"),
        "command": "cc main.c",
        "timeout": 1,
    }
    execute_args: dict[str, Any] = {
        "input": "1 2",
        "command": "./a.out",
        "timeout": 1,
        "standard": "3",
    }
    return Task(
        user=user,
        compile=Compile(**{**compile_args, **compile_fields}),
        execute=Execute(**{**execute_args, **execute_fields}),
    )


def test_valid_task_passes_under_the_default_policy_only_within_it() -> None:
    task = make_task(e_memory_limit=4 * 1024**3, e_cpu_limit=3600)
    assert validate_task(task, LimitSettings()) is None  # raises nothing
    for tighter in ({"max_memory_limit": 4 * 1024**3 - 1}, {"max_cpu_limit": 3599}):
        with pytest.raises(InvalidInput, match=r"(between 1|from 0\.001) and|to 3599"):
            validate_task(task, replace(LimitSettings(), **tighter))


def test_boundaries_pass_and_one_beyond_fails() -> None:
    edges = make_task(user=0, c_timeout=0, e_timeout=INT_MAX)
    assert validate_task(edges, WIDE) is None
    for beyond in ({"user": INT_MAX + 1}, {"c_timeout": -1}, {"e_timeout": INT_MAX + 1}):
        with pytest.raises(InvalidInput):
            validate_task(make_task(**{"user": 0, "c_timeout": 0, **beyond}), WIDE)
    widest = {
        "c_memory_limit": BYTES_LIMIT_MAX,
        "e_memory_limit": 1,
        "e_cpu_limit": INT_MAX,
        "e_pids_limit": 1,
        "e_output_limit": BYTES_LIMIT_MAX,
        "e_disk_limit": BYTES_LIMIT_MAX,
    }
    assert validate_task(make_task(**widest), WIDE) is None
    for name, value in widest.items():
        beyond = value + 1 if value > 1 else 0
        with pytest.raises(InvalidInput, match="between 1 and|from 0.001 to"):
            validate_task(make_task(**{**widest, name: beyond}), WIDE)


@pytest.mark.parametrize(
    "fields",
    [
        {"user": -1},
        {"user": INT_MAX + 1},
        {"user": True},
        {"user": "1"},
        {"c_timeout": -1},
        {"e_timeout": INT_MAX + 1},
        {"c_command": None},
        {"e_input": b"bytes"},
        {"c_source": "text"},
    ],
)
def test_bad_basic_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_task(make_task(**fields), WIDE)
    assert not isinstance(info.value, TooLarge)


@pytest.mark.parametrize(
    "fields",
    [
        {"c_memory_limit": 0},
        {"c_memory_limit": BYTES_LIMIT_MAX + 1},
        {"e_memory_limit": -5},
        {"e_cpu_limit": 0},
        {"e_cpu_limit": INT_MAX + 1},
        {"e_pids_limit": 0},
        {"e_pids_limit": 1.5},
        {"e_output_limit": 0},
        {"e_output_limit": False},
        {"e_disk_limit": 0},
        {"e_disk_limit": -1},
        {"e_disk_limit": 1.5},
        {"e_disk_limit": "1048576"},
        {"e_disk_limit": True},
        {"e_disk_limit": BYTES_LIMIT_MAX + 1},
    ],
)
def test_bad_limits(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="between 1 and|from 0.001 to"):
        validate_task(make_task(**fields), WIDE)


def test_fractional_seconds_pass() -> None:
    assert validate_task(make_task(c_timeout=0.5, e_timeout=1.5, e_cpu_limit=0.25), WIDE) is None
    for bad in ({"e_timeout": 0.0001}, {"e_timeout": float("inf")}, {"e_cpu_limit": 0.0}):
        with pytest.raises(InvalidInput):
            validate_task(make_task(**bad), WIDE)


def test_too_large() -> None:
    task = make_task()
    size = task_size(task)
    assert validate_task(task, replace(WIDE, max_task_size=size)) is None
    with pytest.raises(TooLarge, match=f"more than the limit of {size - 1}"):
        validate_task(task, replace(WIDE, max_task_size=size - 1))


def test_bad_zips() -> None:
    task = make_task()
    with pytest.raises(InvalidInput, match="zip"):
        validate_task(replace(task, compile=replace(task.compile, source=b"garbage")), WIDE)
    with pytest.raises(InvalidInput, match="zip"):
        validate_task(replace(task, execute=replace(task.execute, data=b"garbage")), WIDE)
    with pytest.raises(InvalidInput, match="entries"):
        validate_task(task, replace(WIDE, zip_max_files=0))
    unpacked = len("int main(){}")
    assert validate_task(task, replace(WIDE, zip_max_bytes=unpacked, zip_max_files=1)) is None
    with pytest.raises(InvalidInput, match="unpacks to"):
        validate_task(task, replace(WIDE, zip_max_bytes=unpacked - 1))


def test_empty_zips_pass_even_when_no_zip_is_allowed() -> None:
    task = make_task(c_source=b"", e_data=b"")
    no_zips = replace(WIDE, zip_max_bytes=0, zip_max_files=0)
    assert validate_task(task, no_zips) is None
    with pytest.raises(InvalidInput, match="entries"):
        validate_task(make_task(e_data=b""), no_zips)  # the compile source is a zip


def test_configured_maxima_bound_the_limits() -> None:
    policy = replace(
        WIDE,
        max_memory_limit=1 << 30,
        max_cpu_limit=10,
        max_pids_limit=100,
        max_output_limit=1 << 20,
        max_disk_limit=1 << 24,
    )
    validate_task(
        make_task(
            e_memory_limit=1 << 30,
            e_cpu_limit=10,
            e_pids_limit=100,
            e_output_limit=1 << 20,
            c_memory_limit=1 << 30,
            e_disk_limit=1 << 24,
        ),
        policy,
    )
    for fields in (
        {"e_memory_limit": (1 << 30) + 1},
        {"c_memory_limit": (1 << 30) + 1},
        {"e_cpu_limit": 11},
        {"e_pids_limit": 101},
        {"e_output_limit": (1 << 20) + 1},
        {"e_disk_limit": (1 << 24) + 1},
    ):
        with pytest.raises(InvalidInput):
            validate_task(make_task(**fields), policy)


def test_every_node_carries_the_one_policy() -> None:
    for cls in (GatewaySettings, JudicatorSettings, ExecutorSettings):
        assert issubclass(cls, LimitSettings)
        for name in ("max_task_size", "zip_max_bytes", "zip_max_files", "max_disk_limit"):
            assert getattr(cls(), name) == getattr(LimitSettings(), name), (cls, name)


def test_the_limits_table() -> None:
    fields = [limit.field for limit in TASK_LIMITS]
    assert fields == [
        "compile_memory_limit",
        "execute_memory_limit",
        "execute_cpu_limit",
        "execute_pids_limit",
        "execute_output_limit",
        "execute_disk_limit",
    ]
    task = make_task(c_memory_limit=5, e_memory_limit=6, e_cpu_limit=7, e_output_limit=9,
                     e_disk_limit=10)
    assert [limit.asked(task) for limit in TASK_LIMITS] == [5, 6, 7, None, 9, 10]
    policy = LimitSettings()
    assert [limit.largest(policy) for limit in TASK_LIMITS] == [
        policy.max_memory_limit,
        policy.max_memory_limit,
        policy.max_cpu_limit,
        policy.max_pids_limit,
        policy.max_output_limit,
        policy.max_disk_limit,
    ]
    for limit in TASK_LIMITS:  # the wire carries every value the default policy allows
        assert limit.largest(policy) <= limit.wire_max


def test_an_ask_is_at_most_the_policy_and_else_the_default() -> None:
    """The one clamp of every limit, for a task's ask (`clamp`) and a judging case's (`within`,
    khala/executor/judge.py)."""
    policy = LimitSettings(max_cpu_limit=10)
    (cpu,) = [limit for limit in TASK_LIMITS if limit.name == "cpu_limit"]
    assert cpu.within(4, policy, 7) == 4
    assert cpu.within(40, policy, 7) == 10  # at most the policy's largest
    assert cpu.within(None, policy, 7) == 7 and cpu.within(0, policy, None) is None
    task = Task(execute=Execute(cpu_limit=40))
    assert cpu.clamp(task, policy, 7) == cpu.within(40, policy, 7) == 10
