"""A judged case's run command on the real bwrap sandbox, cold and warm: a plain command
(khala/rules/commands.py) is the step itself, with no shell between it and the sandbox and
exactly the step's environment; a command that needs a shell still runs in bash, as written."""

from __future__ import annotations

import pytest

from khala.model import Case, Compile, Execute, Status, StepOptions, Task, Verdict
from khala.zipcheck import make_zip_files
from tests.executor.judging_box import Executor, judged
from tests.executor.judging_box import executor as executor  # noqa: F401 - fixture
from tests.executor.judging_box import sandbox as sandbox  # noqa: F401 - fixture

pytestmark = pytest.mark.integration  # the real sandbox

# Who started the program (pid 1 of the sandbox: its init, or bubblewrap when cold; bash
# otherwise), and its environment's names.
PROGRAM = """import os
parent = open(f"/proc/{os.getppid()}/comm").read().strip()
print("top" if os.getppid() == 1 else parent, *sorted(os.environ), input())
"""
STEP_NAMES = "HOME LANG LC_ALL PATH TMPDIR"


def task(command: str, expected: str, options: StepOptions | None = None) -> Task:
    return Task(id="run-command", user=1, compile=Compile(
        source=make_zip_files([("prog.py", PROGRAM.encode()),
                               ("env.sh", b"export FROM_BASH_ENV=yes\n")]),
        command="true", timeout=60),
        execute=Execute(command=command, timeout=30, options=options or StepOptions(),
                        cases=[Case(input="one", standard=expected),
                               Case(input="two", standard=expected.replace("one", "two"))]))


def test_a_plain_command_is_the_step_itself(executor: Executor) -> None:
    status, result = judged(executor, task("python3 prog.py", f"top {STEP_NAMES} one"))
    assert status == Status.SUCCESS, result
    assert result.judgement is not None
    assert [c.verdict for c in result.judgement.cases] == [Verdict.ACCEPTED] * 2, (
        result.execute_output, result.execute_error)


def test_a_command_that_needs_a_shell_runs_in_bash(executor: Executor) -> None:
    # bash adds its own variables to the program's environment
    names = " ".join(sorted([*STEP_NAMES.split(), "PWD", "SHLVL", "_"]))
    status, result = judged(executor, task("python3 prog.py | cat", f"bash {names} one"))
    assert status == Status.SUCCESS, result
    assert result.judgement is not None
    assert [c.verdict for c in result.judgement.cases] == [Verdict.ACCEPTED] * 2, (
        result.execute_output, result.execute_error)


def test_a_bash_env_keeps_a_plain_command_in_bash(executor: Executor) -> None:
    """BASH_ENV names a file bash sources before the command: a step that sets it gets it."""
    names = " ".join(sorted([*STEP_NAMES.split(), "BASH_ENV", "FROM_BASH_ENV", "PWD",
                             "SHLVL", "_"]))
    options = StepOptions(env={"BASH_ENV": "/work/env.sh"})
    status, result = judged(executor, task("python3 prog.py", f"bash {names} one", options))
    assert status == Status.SUCCESS, result
    assert result.judgement is not None
    assert [c.verdict for c in result.judgement.cases] == [Verdict.ACCEPTED] * 2, (
        result.execute_output, result.execute_error)
