"""A judged task's step options on the real bwrap sandbox, cold and warm, through the executor's
own judging (khala/executor/judge.py, caserun.py, interact.py): the compile options reach the
program's build, the execute options every case's run of the program — its environment, its
working directory, files out named from the work area — and never a jury program: the checker
and the interactor run in /work without the contestant's environment (they check that
themselves, so a leak is a wrong answer). Cached case files (a stored problem's), bound
read-only into the run's dir, are read from a working directory of the task's own. A step that
cannot run as asked (the network on an executor that does not allow it) fails its case as an
internal error that says why, plain and interactive alike."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest

from khala.executor.casefiles import CaseFiles
from khala.executor.judge import Judge
from khala.model import (
    Case,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    Interactor,
    Result,
    Status,
    StepOptions,
    Task,
    Verdict,
)
from khala.zipcheck import make_zip_files
from tests.executor.judging_box import Executor, judged
from tests.executor.judging_box import executor as executor  # noqa: F401 - fixture
from tests.executor.judging_box import sandbox as sandbox  # noqa: F401 - fixture

# The compile step, in build/ with MODE set, leaves build/mode.txt among the program's files.
PROGRAM = """import os, sys
mode = open("/work/build/mode.txt").read().strip()
text = sys.stdin.read()
with open("out.txt", "w") as fh:
    fh.write(f"wrote in {os.getcwd()}")
print(mode, os.environ.get("GREETING", "-"), os.getcwd())
print(text, end="")
"""
COMPILE_OPTIONS = StepOptions(env={"MODE": "fast"}, workdir="build")
EXECUTE_OPTIONS = StepOptions(env={"GREETING": "hi"}, workdir="run/deep")
SEEN = "fast hi /work/run/deep\n"  # what the program sees of its options

# A checker that accepts only the right output, the file out where the program wrote it, and
# its own clean environment (no GREETING) in /work.
CHECKER = """import os, sys
out, answer = open(sys.argv[2]).read(), open(sys.argv[3]).read()
wrote = open("outputs/run/deep/out.txt").read()
mine = f"{os.environ.get('GREETING', '-')} {os.getcwd()}"
print(f"output {out!r} answer {answer!r} file {wrote!r} mine {mine!r}", file=sys.stderr)
sys.exit(0 if out == answer and wrote == "wrote in /work/run/deep" and mine == "- /work" else 1)
"""

# An interactor that accepts only the program's options in its reply and none in its own
# environment and working directory.
INTERACTOR = """import os, sys
print("ping", flush=True)
reply = sys.stdin.readline().strip()
mine = f"{os.environ.get('GREETING', '-')} {os.getcwd()}"
print(f"reply {reply!r} mine {mine!r}", file=sys.stderr)
sys.exit(0 if reply == "hi /work/run/deep" and mine == "- /work" else 1)
"""
ANSWERING = """import os
input()
print(os.environ.get("GREETING", "-"), os.getcwd(), flush=True)
"""


def program_task(cases: list[Case], **execute: object) -> Task:
    return Task(id="options", user=1, compile=Compile(
        source=make_zip_files([("prog.py", PROGRAM.encode())]), command='echo "$MODE" > mode.txt',
        timeout=60, options=COMPILE_OPTIONS), execute=Execute(
        command="python3 /work/prog.py", timeout=30, cases=cases,
        options=execute.pop("options", EXECUTE_OPTIONS), **execute))  # type: ignore[arg-type]


def verdicts(result: Result) -> list[Verdict]:
    assert result.judgement is not None, result
    return [case.verdict for case in result.judgement.cases]


@pytest.mark.integration
def test_every_case_runs_with_the_tasks_options_and_the_checker_without(
        executor: Executor) -> None:
    cases = [Case(input="one\n", standard=SEEN + "one\n"),
             Case(input="two\n", standard=SEEN + "two\n")]
    status, result = judged(executor, program_task(cases, outputs=["run/deep/out.txt"]))
    assert status == Status.SUCCESS, result
    assert verdicts(result) == [Verdict.ACCEPTED] * 2, result.judgement
    assert result.judgement is not None
    for case in result.judgement.cases:
        assert [(f.name, f.content) for f in case.files] == [
            ("run/deep/out.txt", b"wrote in /work/run/deep")]
    checked = program_task([*cases, Case(input="three\n", standard=SEEN + "wrong\n")],
                           outputs=["run/deep/out.txt"],
                           compare=Compare(mode=CompareMode.CHECKER, checker=Checker(
                               language="python3", source=CHECKER)))
    status, result = judged(executor, checked)
    assert verdicts(result) == [Verdict.ACCEPTED, Verdict.ACCEPTED, Verdict.WRONG_ANSWER], (
        result.judgement)


@pytest.mark.integration
def test_without_options_the_program_runs_in_the_work_area_as_before(
        executor: Executor) -> None:
    plain = program_task([Case(input="x\n", standard="fast - /work\nx\n")],
                         options=StepOptions())
    status, result = judged(executor, plain)
    assert verdicts(result) == [Verdict.ACCEPTED], result.judgement


def interactive_task(options: StepOptions) -> Task:
    return Task(id="interactive", user=1, compile=Compile(
        source=make_zip_files([("main.py", ANSWERING.encode())]), command="true", timeout=60),
        execute=Execute(command="python3 /work/main.py", timeout=30,
                        cases=[Case(input="1\n", standard="")],
                        interactor=Interactor(language="python3", source=INTERACTOR),
                        options=options))


@pytest.mark.integration
def test_the_interactor_talks_to_a_program_with_options_and_has_none(
        executor: Executor) -> None:
    options = StepOptions(env={"GREETING": "hi"}, workdir="/work/run/deep")
    status, result = judged(executor, interactive_task(options))
    assert verdicts(result) == [Verdict.ACCEPTED], result.judgement
    status, result = judged(executor, interactive_task(StepOptions()))
    assert verdicts(result) == [Verdict.WRONG_ANSWER], result.judgement  # "- /work" replied


@pytest.mark.integration
def test_a_step_the_executor_cannot_give_the_network_fails_its_case_saying_why(
        executor: Executor) -> None:
    refused = StepOptions(env={"GREETING": "hi"}, network=True)
    status, result = judged(executor, program_task([Case(input="x\n", standard="x\n")],
                                                   options=refused))
    assert verdicts(result) == [Verdict.INTERNAL_ERROR], result.judgement
    assert result.judgement is not None
    assert "does not allow the network" in result.judgement.cases[0].error
    status, result = judged(executor, interactive_task(refused))
    assert verdicts(result) == [Verdict.INTERNAL_ERROR], result.judgement
    assert result.judgement is not None
    assert "does not allow the network" in result.judgement.cases[0].message


@pytest.mark.integration
def test_a_stored_problems_cached_files_are_read_from_the_tasks_working_directory(
        executor: Executor) -> None:
    """The inputs and answers are cached files (bound read-only, no copy); the problem's
    extra file is in data/. The program runs in data/sub and reads them by relative paths.
    (Through the API a task naming a stored problem has a language, so it may not move its
    working directory; this is the executor's side, which must hold for any options.)"""
    cache = executor.root / "files"
    cache.mkdir()
    inputs, answers = [], []
    for i, text in enumerate(["alpha\n", "beta\n"]):
        inputs.append(str(cache / f"{i}.in"))
        answers.append(str(cache / f"{i}.ans"))
        Path(inputs[-1]).write_text(text)
        Path(answers[-1]).write_text(f"tag extra {text}/work/data/sub\n")
    extra = cache / "extra"
    extra.write_text("extra ")
    for path in [*inputs, *answers, str(extra)]:
        os.chmod(path, 0o444)
    files = CaseFiles(inputs=inputs, answers=answers, extras={"extra.txt": str(extra)})
    task = Task(id="problem", user=1, compile=Compile(command="true", timeout=60),
                execute=Execute(command='printf "$TAG "; cat ../extra.txt ../../execute.in; pwd',
                                timeout=30, cases=[Case(), Case()],
                                options=StepOptions(env={"TAG": "tag"}, workdir="data/sub")))
    judge = Judge(task, executor.sandbox, executor.settings, executor.context,
                  threading.Event(), files)
    scratch = tempfile.mkdtemp(dir=executor.root)
    status, result = judge.run(lambda status: None, scratch)
    assert verdicts(result) == [Verdict.ACCEPTED] * 2, result.judgement
