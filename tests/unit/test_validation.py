"""validate_task: ints, limits, sizes and zips of a new task."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from khala.errors import InvalidInput, TooLarge
from khala.model import INT_MAX, Compile, Execute, Task, task_size
from khala.validation import BYTES_LIMIT_MAX, validate_task
from khala.zipcheck import make_zip

LIMITS = {"max_task_size": 16252928, "zip_max_bytes": 1 << 20, "zip_max_files": 10}


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


def test_valid_task_passes() -> None:
    validate_task(make_task(), **LIMITS)


def test_boundaries_pass() -> None:
    validate_task(make_task(user=0, c_timeout=0, e_timeout=INT_MAX), **LIMITS)
    validate_task(
        make_task(
            c_memory_limit=BYTES_LIMIT_MAX,
            e_memory_limit=1,
            e_cpu_limit=INT_MAX,
            e_pids_limit=1,
            e_output_limit=BYTES_LIMIT_MAX,
        ),
        **LIMITS,
    )


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
        validate_task(make_task(**fields), **LIMITS)
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
    ],
)
def test_bad_limits(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="between 1 and"):
        validate_task(make_task(**fields), **LIMITS)


def test_too_large() -> None:
    task = make_task()
    size = task_size(task)
    validate_task(task, size, 1 << 20, 10)
    with pytest.raises(TooLarge):
        validate_task(task, size - 1, 1 << 20, 10)


def test_bad_zips() -> None:
    task = make_task()
    with pytest.raises(InvalidInput, match="zip"):
        validate_task(replace(task, compile=replace(task.compile, source=b"garbage")), **LIMITS)
    with pytest.raises(InvalidInput, match="zip"):
        validate_task(replace(task, execute=replace(task.execute, data=b"garbage")), **LIMITS)
    with pytest.raises(InvalidInput, match="entries"):
        validate_task(task, 16252928, 1 << 20, 0)


def test_empty_zips_pass() -> None:
    task = make_task(c_source=b"", e_data=b"")
    validate_task(task, **LIMITS)


def test_configured_maxima_bound_the_limits() -> None:
    from khala.validation import Maxima

    maxima = Maxima(memory=1 << 30, cpu=10, pids=100, output=1 << 20)
    validate_task(
        make_task(
            e_memory_limit=1 << 30,
            e_cpu_limit=10,
            e_pids_limit=100,
            e_output_limit=1 << 20,
            c_memory_limit=1 << 30,
        ),
        **LIMITS,
        maxima=maxima,
    )
    for fields in (
        {"e_memory_limit": (1 << 30) + 1},
        {"c_memory_limit": (1 << 30) + 1},
        {"e_cpu_limit": 11},
        {"e_pids_limit": 101},
        {"e_output_limit": (1 << 20) + 1},
    ):
        with pytest.raises(InvalidInput):
            validate_task(make_task(**fields), **LIMITS, maxima=maxima)
