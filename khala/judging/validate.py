"""Validation of a task's judging parts (language, cases, comparison), shared by every node
through khala/rules/limits.py. Pure; raises InvalidInput with a message for the user."""

from __future__ import annotations

import math
import re

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.judging.presets import LANGUAGE_RE, PRESETS
from khala.model import INT_MAX, Case, CompareMode, Group, Task
from khala.rules.seconds import RESOLUTION, is_seconds

NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
MAX_OUTPUTS = 64  # files a task may ask back
MAX_OUTPUT_PATH = 255  # characters of one such file's path


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
    if not isinstance(case.group, str):
        raise InvalidInput(f"{what}: group must be a group's name")


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


def _group(index: int, group: Group) -> None:
    what = f"group {index + 1}"
    if not isinstance(group.name, str) or not NAME_RE.match(group.name):
        raise InvalidInput(f"{what}: name must be 1..64 of A-Z a-z 0-9 . _ -")
    points = group.points
    if (not isinstance(points, int | float) or isinstance(points, bool)
            or not math.isfinite(points) or not 0 <= points <= INT_MAX):
        raise InvalidInput(f"group {group.name!r}: points must be a finite number between 0 "
                           f"and {INT_MAX}")


def _cycle(groups: list[Group]) -> list[str] | None:
    """A dependency cycle among `groups` (names in order), or None."""
    deps = {g.name: g.deps for g in groups}
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for dep in deps[name]:
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep] if dep in path else [name, dep]
            if state.get(dep) is None:
                found = visit(dep, [*path, dep])
                if found is not None:
                    return found
        state[name] = 2
        return None

    for group in groups:
        if group.name not in state:
            found = visit(group.name, [group.name])
            if found is not None:
                return found
    return None


def _groups(task: Task, policy: LimitSettings) -> None:
    """Groups: named once each, their dependencies known and acyclic; with groups every case
    names one of them, without groups none does."""
    e = task.execute
    if len(e.groups) > policy.max_cases:
        raise InvalidInput(f"{len(e.groups)} groups, more than the limit of {policy.max_cases}")
    names: set[str] = set()
    for index, group in enumerate(e.groups):
        _group(index, group)
        if group.name in names:
            raise InvalidInput(f"group {group.name!r} is named twice")
        names.add(group.name)
    for group in e.groups:
        for dep in group.deps:
            if dep == group.name:
                raise InvalidInput(f"group {group.name!r} depends on itself")
            if dep not in names:
                raise InvalidInput(f"group {group.name!r} depends on {dep!r}, which is no group")
    cycle = _cycle(e.groups)
    if cycle is not None:
        raise InvalidInput("the groups' dependencies form a cycle: " + " → ".join(cycle))
    if not e.groups:
        if any(c.group for c in e.cases):
            raise InvalidInput("a case names a group, but the task has no groups")
        if e.skip_failed_groups:
            raise InvalidInput("skip_failed_groups needs groups")
        return
    if not e.cases:
        raise InvalidInput("groups need test cases (each names its group)")
    for index, case in enumerate(e.cases):
        if case.group not in names:
            raise InvalidInput(f"case {index + 1}: group {case.group!r} is no group of the task"
                               if case.group else f"case {index + 1} names no group")
    if e.stop_on_failure and e.skip_failed_groups:
        raise InvalidInput("give stop_on_failure or skip_failed_groups, not both")


def _interactor(task: Task, policy: LimitSettings) -> None:
    e = task.execute
    spec = e.interactor
    if spec is None:
        return
    if not isinstance(spec.source, str) or not spec.source:
        raise InvalidInput("an interactor needs a language and a source")
    _language("interactor language", spec.language)
    _positive("interactor timeout", spec.timeout, INT_MAX)
    _positive("interactor cpu_limit", spec.cpu_limit, policy.max_cpu_limit)
    _positive("interactor memory_limit", spec.memory_limit, policy.max_memory_limit)
    if e.interactive:
        raise InvalidInput("an interactor and live input (interactive) cannot go together")
    if e.compare is not None and e.compare.mode != CompareMode.CHECKER:
        raise InvalidInput("with an interactor the interactor decides: give no compare, or "
                           "mode checker to check the interactor's output file")


def output_path_problem(name: object) -> str | None:
    """Why `name` cannot be a file asked back (a relative path inside the work dir), or None."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty path"
    if len(name) > MAX_OUTPUT_PATH or "\0" in name:
        return f"must be at most {MAX_OUTPUT_PATH} characters, without NUL"
    if name.startswith("/") or any(part in ("", ".", "..") for part in name.split("/")):
        return "must be relative, without empty, . or .. parts"
    return None


def _outputs(task: Task) -> None:
    outputs = task.execute.outputs
    if len(outputs) > MAX_OUTPUTS:
        raise InvalidInput(f"{len(outputs)} output files, more than the limit of {MAX_OUTPUTS}")
    for name in outputs:
        problem = output_path_problem(name)
        if problem is not None:
            raise InvalidInput(f"output file {name!r} {problem}")
    if len(set(outputs)) != len(outputs):
        raise InvalidInput("an output file is named twice")


def check_judging(task: Task, policy: LimitSettings) -> None:
    """A task's language, cases and comparison, when it has them. A program built in an image
    may name any language: the image's presets say which it has (docs/images.md), and a
    language no live executor offers in it is refused at submission (khala/judicator/
    offered.py)."""
    language = task.compile.language
    if language:
        if task.compile.image is None:
            _language("language", language)
        elif not isinstance(language, str) or not LANGUAGE_RE.fullmatch(language):
            raise InvalidInput(f"language {language!r} is no language name (1..32 of a-z 0-9 "
                               "_ + -, starting with a letter)")
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
    _groups(task, policy)
    _interactor(task, policy)
    _outputs(task)
