"""One test case's runs on the executor: the program in a fresh sandbox work dir (with the files
it wrote taken back), and the checker on its output. The interactive case's two runs are
khala/executor/interact.py; the judging of the whole task is khala/executor/judge.py.

A case's input and answer are the task's texts, or, for a task naming a stored problem, the
cached files themselves (khala/executor/casefiles.py), placed in the run's dir without a copy.
The task's execute options (khala/executor/stepopts.py) apply to the program's run, never to
the checker's: a jury program gets nothing of the contestant's environment or network.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from functools import cached_property

from khala.config import ExecutorSettings
from khala.errors import InvalidInput
from khala.executor.build import STEP_ENV, Build
from khala.executor.casefiles import CaseFiles
from khala.executor.outfiles import collect, write_for_checker
from khala.executor.runner import execute_limits
from khala.executor.stepopts import run_step
from khala.executor.workdirs import CopyLimit, copy_tree, make_workdir, remove_workdir
from khala.judging import checker as checker_protocol
from khala.judging.presets import HostLanguage
from khala.model import Case, OutputFile, Reason, StepReport, Task, Verdict
from khala.rules.commands import direct_argv
from khala.rules.limits import EXECUTE_MEMORY, EXECUTE_OUTPUT
from khala.rules.seconds import cpu_time, wall_time
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox, SignalBox
from khala.zipcheck import ExtractLimit, extract_zip

CHECKER_WALL = 30.0  # seconds a checker may run on one case
CHECKER_OUTPUT = 1 << 20  # bytes of a checker's stdout and stderr kept
COMMENT = 4096  # bytes of a checker's comment kept as the case's message


@dataclass
class Jury:
    """A built jury program (checker or interactor) and the language it runs with."""

    build: Build
    host: HostLanguage

    @property
    def artifacts(self) -> str:
        assert self.build.artifacts is not None
        return self.build.artifacts


@dataclass
class CaseEnv:
    """What every case of one judged task runs with."""

    task: Task
    sandbox: Sandbox
    settings: ExecutorSettings
    cancel: threading.Event
    artifacts: str  # the program's build
    run_command: str
    checker: Jury | None = None
    interactor: Jury | None = None
    signals: SignalBox | None = None
    files: CaseFiles | None = None  # a stored problem's cases: cached files, not texts
    root: str | None = None  # the unpacked image the program runs in (None: the host's)
    time_factor: float = 1.0  # the language preset's: CPU and wall limits are multiplied

    @cached_property
    def task_limits(self) -> Limits:
        """The task's execute limits, worked out once for all its cases (they read the host's
        core pattern, among others)."""
        return execute_limits(self.task, self.settings)

    def input_path(self, index: int) -> str | None:
        """The cached input of case `index` of a stored problem; None: the case's text."""
        return self.files.inputs[index] if self.files is not None else None

    def answer_path(self, index: int) -> str | None:
        return self.files.answers[index] if self.files is not None else None


@dataclass
class Executed:
    """A case's run of the program and the files it wrote that the task asks back."""

    outcome: RunOutcome
    files: list[OutputFile] = field(default_factory=list)


def case_limits(task: Task, case: Case, settings: ExecutorSettings,
                base: Limits | None = None) -> Limits:
    """The task's execute limits (`base`, when the caller has them already: a copy is
    changed) with the case's own asks (clamped to the policy) on top."""
    s = settings
    limits = execute_limits(task, settings) if base is None else replace(base)
    if case.timeout:
        limits.wall_time = wall_time(case.timeout, s)
    if case.cpu_limit:
        limits.cpu_time = cpu_time(case.cpu_limit, s)
    limits.memory = EXECUTE_MEMORY.within(case.memory_limit, s, limits.memory)
    output = EXECUTE_OUTPUT.within(case.output_limit, s, limits.output)
    # As for any step (runner.py): the cap is at most result_limit, so a kept stream is whole.
    limits.output = min(output if output is not None else limits.output, s.result_limit)
    return limits


def run_limits(env: CaseEnv, case: Case) -> Limits:
    """The program's limits on `case`: case_limits, with a stored problem's CPU limit for the
    task's language (it may be fractional; at most the policy's maximum) in place of the
    task's."""
    limits = case_limits(env.task, case, env.settings, env.task_limits)
    if env.files is not None and env.files.cpu_seconds is not None:
        limits.cpu_time = cpu_time(env.files.cpu_seconds, env.settings)
    if env.time_factor != 1.0:
        if limits.cpu_time is not None:
            limits.cpu_time *= env.time_factor
        if limits.wall_time is not None:
            limits.wall_time *= env.time_factor
    return limits


def place_case(env: CaseEnv, workdir: str, name: str, path: str | None, text: str) -> None:
    """A case's file in a prepared run dir: the cached file itself (read-only, no copy) for a
    stored problem, else the task's text."""
    target = os.path.join(workdir, name)
    if path is not None:
        env.sandbox.place_file(path, target)
        return
    with open(target, "wb") as fh:
        fh.write(text.encode())


def fill(env: CaseEnv, workdir: str, artifacts: str, files: dict[str, bytes],
         limits: Limits) -> None:
    """Make the fresh `workdir` a run's: its work area, the artifacts, `files`."""
    env.sandbox.open_workdir(workdir, limits.disk)
    copy_tree(artifacts, workdir, limits.disk or env.settings.disk_limit)
    for name, content in files.items():
        with open(os.path.join(workdir, name), "wb") as fh:
            fh.write(content)


def program_workdir(env: CaseEnv, workdir: str, files: dict[str, bytes],
                    limits: Limits) -> None:
    """The program's work dir: its build, `files`, the data zip in data/ (with a stored
    problem's extra files)."""
    s = env.settings
    fill(env, workdir, env.artifacts, files, limits)
    data = os.path.join(workdir, "data")
    os.mkdir(data, 0o755)
    extract_zip(env.task.execute.data, data, s.zip_max_bytes, s.zip_max_files, s.unpack_timeout)
    env.sandbox.prepare_workdir(workdir)
    if env.files is not None:
        env.files.place_extras(env.sandbox, data)


def files_out(env: CaseEnv, workdir: str, outcome: RunOutcome, budget: int
              ) -> list[OutputFile]:
    """The files the case's run wrote that the task asks back; one over `budget` (the case's
    output cap) ends the run as output_limit."""
    found = collect(workdir, env.task.execute.outputs, budget)
    if found.over and outcome.report.reason == Reason.OK:
        outcome.report.reason = Reason.OUTPUT_LIMIT
    return found.files


def execute(env: CaseEnv, index: int, case: Case) -> Executed:
    """Run the program on `case` (the task's case `index`) in a fresh work dir."""
    limits = run_limits(env, case)
    workdir = make_workdir(env.task.id, env.settings, "-case")
    try:
        program_workdir(env, workdir, {"execute.sh": (env.run_command + "\n").encode()},
                        limits)
        place_case(env, workdir, "execute.in", env.input_path(index), case.input)
        spec = RunSpec(argv=run_argv(env), workdir=workdir,
                       stdin_path=os.path.join(workdir, "execute.in"), env=dict(STEP_ENV),
                       limits=limits, signals=env.signals, root=env.root)
        outcome = run_step(env.sandbox, spec, env.task.execute.options, env.cancel)
        return Executed(outcome, files_out(env, workdir, outcome, limits.output))
    except (OSError, CopyLimit, ExtractLimit, InvalidInput) as exc:
        return Executed(failed_files(exc))
    finally:
        remove_workdir(workdir, env.sandbox)


def run_argv(env: CaseEnv) -> list[str]:
    """The program's argv: its run command itself when no shell is needed for it (a bash
    start-up per case saved), else `bash execute.sh`; always bash when the step moves to
    another working directory (execute.sh is then named from there: stepopts.script_from)."""
    options = env.task.execute.options
    direct = None if options.workdir else direct_argv(env.run_command, options.env)
    return direct if direct is not None else ["bash", "execute.sh"]


def failed_files(exc: Exception) -> RunOutcome:
    """The outcome of a case whose files could not be laid out (Khala's failure)."""
    return RunOutcome(b"", f"[khala] the case's files: {exc}\n".encode(),
                      StepReport(reason=Reason.INTERNAL_ERROR))


def check(env: CaseEnv, index: int, case: Case, output: bytes, outputs: list[OutputFile]
          ) -> tuple[Verdict, str, float]:
    """Ask the checker about `output` (the program's stdout, or the interactor's output file)
    and the files out; returns the verdict, the message and the points."""
    jury = env.checker
    assert jury is not None
    s = env.settings
    limits = Limits(wall_time=CHECKER_WALL, memory=s.memory_limit, pids=s.pids_limit,
                    output=CHECKER_OUTPUT, disk=s.disk_limit)
    files = {"check.sh": f"{jury.host.run_command} {checker_protocol.ARGS}\n".encode(),
             checker_protocol.OUTPUT: output}
    workdir = make_workdir(env.task.id, s, "-check")
    try:
        fill(env, workdir, jury.artifacts, files, limits)
        if env.task.execute.outputs:
            write_for_checker(outputs, os.path.join(workdir, checker_protocol.OUTPUTS_DIR))
        env.sandbox.prepare_workdir(workdir)
        place_jury_case(env, workdir, index, case)
        spec = RunSpec(argv=["bash", "check.sh"], workdir=workdir, env=dict(STEP_ENV),
                       limits=limits)
        outcome = env.sandbox.run(spec, env.cancel)
    except (OSError, CopyLimit) as exc:
        return Verdict.INTERNAL_ERROR, f"checker could not run: {exc}", 0.0
    finally:
        remove_workdir(workdir, env.sandbox)
    return checker_protocol.decide(outcome.report, text(outcome.stderr), text(outcome.stdout),
                                   case.weight)


def place_jury_case(env: CaseEnv, workdir: str, index: int, case: Case) -> None:
    """The case's input and answer where a jury program (checker, interactor) reads them."""
    place_case(env, workdir, checker_protocol.INPUT, env.input_path(index), case.input)
    place_case(env, workdir, checker_protocol.ANSWER, env.answer_path(index), case.standard)


def text(data: bytes) -> str:
    """A jury program's comment: its first COMMENT bytes as text."""
    return data[:COMMENT].decode("utf-8", errors="replace")
