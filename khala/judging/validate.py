"""Validation of a task's judging parts (language, cases, comparison), shared by every node
through khala/rules/limits.py. Pure; raises InvalidInput with a message for the user."""

from __future__ import annotations

import math

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.judging.presets import PRESETS
from khala.model import INT_MAX, Case, CompareMode, Task
from khala.rules.seconds import RESOLUTION, is_seconds


def _language(what: str, name: str) -> None:
    if name not in PRESETS:
        raise InvalidInput(f"{what} {name!r} is no language preset; one of {sorted(PRESETS)}")


def _positive(what: str, value: object, largest: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= largest:
        raise InvalidInput(f"{what} must be an integer between 1 and {largest}")


def _case(index: int, case: Case, policy: LimitSettings) -> None:
    what = f"case {index + 1}"
    if not isinstance(case.input, str) or not isinstance(case.standard, str):
        raise InvalidInput(f"{what}: input and standard must be text")
    w = case.weight
    if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= INT_MAX:
        raise InvalidInput(f"{what}: weight must be an integer between 0 and {INT_MAX}")
    for name, value, largest in (("timeout", case.timeout, INT_MAX),
                                 ("cpu_limit", case.cpu_limit, policy.max_cpu_limit)):
        if value is not None and (not is_seconds(value) or not 0 < value <= largest):
            raise InvalidInput(f"{what} {name} must be a number of seconds from {RESOLUTION} "
                               f"to {largest}")
    _positive(f"{what} memory_limit", case.memory_limit, policy.max_memory_limit)
    _positive(f"{what} output_limit", case.output_limit, policy.max_output_limit)


def _compare(task: Task) -> None:
    spec = task.execute.compare
    if spec is None:
        return
    for name, value in (("abs_tol", spec.abs_tol), ("rel_tol", spec.rel_tol)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InvalidInput(f"compare {name} must be a finite number >= 0")
    checker = spec.checker
    if spec.mode == CompareMode.CHECKER:
        if checker is None or not checker.source:
            raise InvalidInput("compare mode checker needs a checker: a language and a source")
        _language("checker language", checker.language)
    elif checker is not None:
        raise InvalidInput(f"a checker is used only with compare mode checker, not {spec.mode}")


def check_judging(task: Task, policy: LimitSettings) -> None:
    """A task's language, cases and comparison, when it has them."""
    language = task.compile.language
    if language:
        _language("language", language)
        if task.compile.command or task.execute.command:
            raise InvalidInput(f"language {language!r} fills the compile and execute commands: "
                               "leave them empty")
    cases = task.execute.cases
    if len(cases) > policy.max_cases:
        raise InvalidInput(f"{len(cases)} test cases, more than the limit of {policy.max_cases}")
    if cases and (task.execute.input or task.execute.standard):
        raise InvalidInput("give test cases or the execute input and standard, not both")
    for index, case in enumerate(cases):
        _case(index, case, policy)
    _compare(task)
