"""The executor's side of the limits policy: compile_limits / execute_limits clamp what a task
asks to the policy and fall back to the executor's defaults."""

from __future__ import annotations

from khala.config import ExecutorSettings
from khala.executor.runner import compile_limits, execute_limits, work_area
from khala.model import Compile, Execute, Task

SETTINGS = ExecutorSettings(
    memory_limit=512 << 20,
    pids_limit=256,
    output_limit=64 << 20,
    max_memory_limit=4 << 30,
    max_cpu_limit=3600,
    max_pids_limit=4096,
    max_output_limit=256 << 20,
)


def task(compile_timeout: float = 0, execute_timeout: float = 0,
         **execute: float | None) -> Task:
    compile_memory = execute.pop("compile_memory", None)
    return Task(
        compile=Compile(timeout=compile_timeout, memory_limit=compile_memory),
        execute=Execute(timeout=execute_timeout, **execute),  # type: ignore[arg-type]
    )


def test_defaults_when_nothing_is_asked() -> None:
    # 0 / none: the policy's default wall time for each step, its default CPU time for execute
    c = compile_limits(task(), SETTINGS)
    e = execute_limits(task(), SETTINGS)
    assert (c.wall_time, c.cpu_time, c.memory, c.pids, c.output) == (
        60.0, None, 512 << 20, 256, 64 << 20)
    assert (e.wall_time, e.cpu_time, e.memory, e.pids, e.output) == (
        60.0, 60.0, 512 << 20, 256, 64 << 20)
    tight = ExecutorSettings(default_timeout=2.5, default_cpu_limit=1.5)
    assert (execute_limits(task(), tight).wall_time, execute_limits(task(), tight).cpu_time) == (
        2.5, 1.5)


def test_fractional_asks_are_kept_and_timeouts_capped() -> None:
    e = execute_limits(task(execute_timeout=1.5, cpu_limit=0.25), SETTINGS)
    assert (e.wall_time, e.cpu_time) == (1.5, 0.25)
    capped = ExecutorSettings(max_timeout=5.0)
    greedy = task(compile_timeout=10**6, execute_timeout=10**6)
    assert compile_limits(greedy, capped).wall_time == 5.0
    assert execute_limits(greedy, capped).wall_time == 5.0


def test_asks_within_the_policy_are_kept_even_above_the_defaults() -> None:
    asked = task(3, 7, compile_memory=1 << 30, memory_limit=2 << 30, cpu_limit=5,
                 pids_limit=1000, output_limit=128 << 20)
    c = compile_limits(asked, SETTINGS)
    e = execute_limits(asked, SETTINGS)
    assert (c.wall_time, c.memory, c.pids, c.output) == (3.0, 1 << 30, 256, 64 << 20)
    assert (e.wall_time, e.cpu_time, e.memory, e.pids, e.output) == (
        7.0, 5, 2 << 30, 1000, 128 << 20)


def test_asks_beyond_the_policy_are_clamped() -> None:
    greedy = task(compile_memory=1 << 40, memory_limit=1 << 40, cpu_limit=10**6,
                  pids_limit=10**6, output_limit=1 << 40)
    c = compile_limits(greedy, SETTINGS)
    e = execute_limits(greedy, SETTINGS)
    assert c.memory == 4 << 30
    assert (e.cpu_time, e.memory, e.pids, e.output) == (3600, 4 << 30, 4096, 256 << 20)


def test_compile_takes_only_its_memory_ask() -> None:
    # pids/output/cpu asks belong to the execute step; the compile step keeps the defaults.
    c = compile_limits(task(cpu_limit=1, pids_limit=2, output_limit=3), SETTINGS)
    assert (c.cpu_time, c.pids, c.output) == (None, 256, 64 << 20)
    assert execute_limits(task(compile_memory=1 << 30), SETTINGS).memory == 512 << 20


def test_the_work_area_is_the_tasks_ask_clamped_else_the_executors_default() -> None:
    s = ExecutorSettings(disk_limit=1 << 30, max_disk_limit=4 << 30)
    assert execute_limits(task(), s).disk == 1 << 30
    assert work_area(task(), s) == 1 << 30
    assert execute_limits(task(disk_limit=1 << 20), s).disk == 1 << 20
    assert execute_limits(task(disk_limit=2 << 30), s).disk == 2 << 30  # above the default
    assert execute_limits(task(disk_limit=1 << 40), s).disk == 4 << 30  # clamped to the policy
    assert work_area(task(disk_limit=1 << 40), s) == 4 << 30
    # The compile step of a plain task shares the run's work area; its limits carry no size.
    assert compile_limits(task(disk_limit=1 << 20), s).disk is None
