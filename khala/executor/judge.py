"""Judging a task on the executor: build once (khala/executor/build.py), then run every test
case in its own fresh sandbox work dir, compare (or ask the checker) and give verdicts.

Cases may run at once on slots the executor lends (`CaseSlots`): each extra slot is a thread
running cases from the same queue. With stop_on_failure the cases run one by one, so "the
cases after the first failure" is well defined. The decisions are pure (khala/judging/).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from khala.config import ExecutorSettings
from khala.errors import InvalidInput
from khala.executor.build import STEP_ENV, Build, Program, build
from khala.executor.compile_cache import CompileCache
from khala.executor.runner import INTERNAL_ERROR, compile_limits, execute_limits, run_task
from khala.executor.stepopts import run_step
from khala.executor.workareas import WorkAreas
from khala.executor.workdirs import CopyLimit, copy_tree, make_workdir, remove_workdir
from khala.judging import checker as checker_protocol
from khala.judging.compare import compare
from khala.judging.presets import HostLanguage
from khala.judging.verdicts import case_failed, overall, run_message, run_verdict
from khala.model import (
    Case,
    CaseResult,
    CompareMode,
    Judgement,
    Reason,
    Result,
    Status,
    StepReport,
    Task,
    Verdict,
    judged,
)
from khala.rules.limits import EXECUTE_MEMORY, EXECUTE_OUTPUT
from khala.rules.seconds import cpu_time, wall_time
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox, SignalBox
from khala.sandbox.fstree import remove_tree
from khala.streams.hub import TaskStream
from khala.zipcheck import ExtractLimit, extract_zip

log = logging.getLogger(__name__)

CHECKER_WALL = 30.0  # seconds a checker may run on one case


class CaseSlots(Protocol):
    """Free slots of the executor that one task's cases may use for a while."""

    def borrow(self, wanted: int) -> int:
        """Take up to `wanted` free slots now (never waits); returns how many."""

    def give_back(self, count: int) -> None:
        """Return slots taken with `borrow`."""


@dataclass
class JudgeContext:
    """What judging needs from the executor besides the sandbox: the languages it has, its
    compile cache and a lender of free slots (None: cases run one by one)."""

    languages: dict[str, HostLanguage]
    cache: CompileCache
    slots: CaseSlots | None = None


def _cut(data: bytes, limit: int) -> str:
    return data[:limit].decode("utf-8", errors="replace")


def case_limits(task: Task, case: Case, settings: ExecutorSettings) -> Limits:
    """The task's execute limits with the case's own asks (clamped to the policy) on top."""
    s = settings
    limits = execute_limits(task, settings)
    if case.timeout:
        limits.wall_time = wall_time(case.timeout, s)
    if case.cpu_limit:
        limits.cpu_time = cpu_time(case.cpu_limit, s)
    limits.memory = EXECUTE_MEMORY.within(case.memory_limit, s, limits.memory)
    output = EXECUTE_OUTPUT.within(case.output_limit, s, limits.output)
    # As for any step (runner.py): the cap is at most result_limit, so a kept stream is whole.
    limits.output = min(output if output is not None else limits.output, s.result_limit)
    return limits


@dataclass
class CaseRun:
    """One case's run: its outcome and its result (verdict decided)."""

    outcome: RunOutcome
    result: CaseResult


class Judge:
    """One judged task on one executor."""

    def __init__(self, task: Task, sandbox: Sandbox, settings: ExecutorSettings,
                 context: JudgeContext, cancel: threading.Event) -> None:
        self.task, self.sandbox, self.settings = task, sandbox, settings
        self.context, self.cancel = context, cancel
        self.cases = task.execute.cases or [Case(input=task.execute.input,
                                                 standard=task.execute.standard)]
        spec = task.execute.compare
        self.compare = spec
        self.mode = spec.mode if spec is not None else CompareMode.LINES
        self.program: Build | None = None
        self.checker: Build | None = None
        self.run_command = task.execute.command
        self.signals: SignalBox | None = None  # API v2 signals for the running step

    # ------------------------------------------------------------------ whole task

    def run(self, on_status: Callable[[int], None], scratch: str) -> tuple[int, Result]:
        problem = self._prepare(scratch)
        if problem is not None:
            return problem
        on_status(Status.RUNNING)
        runs = self._run_cases()
        return self._finish(runs)

    def _language(self, name: str) -> HostLanguage | None:
        return self.context.languages.get(name)

    def _prepare(self, scratch: str) -> tuple[int, Result] | None:
        """Build the program and the checker; a finished (failed) task when that fails."""
        task, s = self.task, self.settings
        host = None
        if task.compile.language:
            host = self._language(task.compile.language)
            if host is None:
                return self._internal(f"language {task.compile.language} is not available on "
                                      "this executor")
            self.run_command = host.run_command
        program = Program(source_zip=task.compile.source, language=host,
                          command=task.compile.command, limits=compile_limits(task, s),
                          signals=self.signals, options=task.compile.options)
        os.mkdir(os.path.join(scratch, "program"))
        self.program = build(program, self.sandbox, s, self.context.cache, self.cancel,
                             os.path.join(scratch, "program"), task.id)
        if not self.program.ok:
            return self._build_failed(self.program, "")
        if self.mode == CompareMode.CHECKER:
            return self._prepare_checker(scratch)
        return None

    def _prepare_checker(self, scratch: str) -> tuple[int, Result] | None:
        spec = self.compare.checker if self.compare is not None else None
        host = self._language(spec.language) if spec is not None else None
        if spec is None or host is None:
            return self._internal("the checker's language is not available on this executor")
        program = Program(source_file=(host.preset.source, spec.source), language=host,
                          limits=compile_limits(self.task, self.settings))
        os.mkdir(os.path.join(scratch, "checker"))
        self.checker = build(program, self.sandbox, self.settings, self.context.cache,
                             self.cancel, os.path.join(scratch, "checker"), self.task.id + "-chk")
        if not self.checker.ok:
            return self._build_failed(self.checker, "the checker did not compile: ")
        return None

    def _judgement(self, verdict: Verdict, message: str = "") -> Judgement:
        cases = [CaseResult(verdict=Verdict.SKIPPED, weight=c.weight) for c in self.cases]
        builds = [b for b in (self.program, self.checker) if b is not None]
        return Judgement(verdict=verdict, score=0, max_score=sum(c.weight for c in cases),
                         cases=cases, language=self._version(),
                         compiles=sum(b.compiles for b in builds),
                         cache_hit=bool(self.program and self.program.cache_hit),
                         message=message)

    def _version(self) -> str:
        host = self._language(self.task.compile.language)
        return host.version if host is not None else ""

    def _internal(self, message: str) -> tuple[int, Result]:
        result = Result(compile_error=f"[khala] {message}".encode())
        result.judgement = self._judgement(Verdict.INTERNAL_ERROR, message)
        return Status.UNKNOWN_ERROR, result

    def _build_failed(self, failed: Build, prefix: str) -> tuple[int, Result]:
        limit = self.settings.result_limit
        result = Result(compile_output=failed.output[:limit],
                        compile_error=failed.error[:limit], compile_report=failed.report)
        if self.program is not None and self.program is not failed:
            result.compile_report = self.program.report
        if failed.internal or prefix:  # a checker that does not build is the jury's problem
            result.judgement = self._judgement(Verdict.INTERNAL_ERROR, prefix + failed.message)
            return Status.UNKNOWN_ERROR, result
        result.judgement = self._judgement(Verdict.COMPILE_ERROR, failed.message)
        return Status.COMPILE_FAILED, result

    def _finish(self, runs: list[CaseRun | None]) -> tuple[int, Result]:
        assert self.program is not None
        limit = self.settings.result_limit
        result = Result(compile_output=self.program.output[:limit],
                        compile_error=self.program.error[:limit],
                        compile_report=self.program.report)
        judgement = self._judgement(Verdict.ACCEPTED)
        judgement.cases = [r.result if r is not None else
                           CaseResult(verdict=Verdict.SKIPPED, weight=c.weight)
                           for r, c in zip(runs, self.cases, strict=True)]
        judgement.verdict, judgement.score, judgement.max_score = overall(judgement.cases)
        result.judgement = judgement
        first = runs[0]
        if first is None:
            return Status.UNKNOWN_ERROR, result
        result.execute_output = first.outcome.stdout[:limit]  # bytes, as the seed view keeps
        result.execute_error = first.outcome.stderr[:limit]
        result.execute_report = first.outcome.report
        if judgement.verdict == Verdict.INTERNAL_ERROR:
            return Status.UNKNOWN_ERROR, result
        ok = first.outcome.report.reason == Reason.OK
        return (Status.SUCCESS if ok else Status.RUN_FAILED), result

    # ------------------------------------------------------------------ cases

    def _run_cases(self) -> list[CaseRun | None]:
        runs: list[CaseRun | None] = [None] * len(self.cases)
        if self.task.execute.stop_on_failure or len(self.cases) == 1:
            for index in range(len(self.cases)):
                run = runs[index] = self._case(index)
                if self.cancel.is_set() or case_failed(run.result.verdict):
                    break
            return runs
        borrowed = self._borrow()
        try:
            with ThreadPoolExecutor(max_workers=1 + borrowed,
                                    thread_name_prefix=f"khala-case-{self.task.id}") as pool:
                for index, run in enumerate(pool.map(self._case, range(len(self.cases)))):
                    runs[index] = run
        finally:
            if borrowed and self.context.slots is not None:
                self.context.slots.give_back(borrowed)
        return runs

    def _borrow(self) -> int:
        slots = self.context.slots
        if slots is None:
            return 0
        wanted = len(self.cases) - 1
        if self.settings.case_parallelism > 0:
            wanted = min(wanted, self.settings.case_parallelism - 1)
        return slots.borrow(wanted) if wanted > 0 else 0

    def _case(self, index: int) -> CaseRun:
        case = self.cases[index]
        if self.cancel.is_set():
            report = StepReport(reason=Reason.CANCELLED)
            return CaseRun(RunOutcome(b"", b"", report),
                           CaseResult(verdict=Verdict.INTERNAL_ERROR, weight=case.weight))
        outcome = self._execute(case)
        report = outcome.report
        limit = self.settings.case_output_limit
        result = CaseResult(weight=case.weight, time=report.time, wall_time=report.wall_time,
                            memory=report.memory, exit_code=report.exit_code,
                            signal=report.signal, output=_cut(outcome.stdout, limit),
                            error=_cut(outcome.stderr, limit))
        verdict = run_verdict(report)
        if verdict is not None:
            result.verdict, result.message = verdict, run_message(report)
        elif self.mode == CompareMode.CHECKER:
            result.verdict, result.message = self._check(case, outcome.stdout)
        else:
            got = outcome.stdout.decode("utf-8", errors="replace")
            difference = compare(self.compare, got, case.standard)
            result.verdict = Verdict.WRONG_ANSWER if difference else Verdict.ACCEPTED
            result.message = difference or ""
        return CaseRun(outcome, result)

    def _fill(self, workdir: str, artifacts: str, files: dict[str, bytes],
              limits: Limits) -> None:
        """Make the fresh `workdir` a run's: its work area, the artifacts, `files`."""
        self.sandbox.open_workdir(workdir, limits.disk)
        copy_tree(artifacts, workdir, limits.disk or self.settings.disk_limit)
        for name, content in files.items():
            with open(os.path.join(workdir, name), "wb") as fh:
                fh.write(content)

    def _execute(self, case: Case) -> RunOutcome:
        assert self.program is not None and self.program.artifacts is not None
        s = self.settings
        limits = case_limits(self.task, case, s)
        workdir = make_workdir(self.task.id, s, "-case")
        try:
            files = {"execute.sh": (self.run_command + "\n").encode(),
                     "execute.in": case.input.encode()}
            self._fill(workdir, self.program.artifacts, files, limits)
            data = os.path.join(workdir, "data")
            os.mkdir(data, 0o755)
            extract_zip(self.task.execute.data, data, s.zip_max_bytes, s.zip_max_files,
                        s.unpack_timeout)
            self.sandbox.prepare_workdir(workdir)
            spec = RunSpec(argv=["bash", "execute.sh"], workdir=workdir,
                           stdin_path=os.path.join(workdir, "execute.in"), env=dict(STEP_ENV),
                           limits=limits, signals=self.signals)
            return run_step(self.sandbox, spec, self.task.execute.options, self.cancel)
        except (OSError, CopyLimit, ExtractLimit, InvalidInput) as exc:
            return RunOutcome(b"", f"[khala] the case's files: {exc}\n".encode(),
                              StepReport(reason=Reason.INTERNAL_ERROR))
        finally:
            remove_workdir(workdir, self.sandbox)

    def _check(self, case: Case, output: bytes) -> tuple[Verdict, str]:
        assert self.checker is not None and self.checker.artifacts is not None
        host = self._language(self.compare.checker.language)  # type: ignore[union-attr]
        assert host is not None
        limits = Limits(wall_time=CHECKER_WALL, memory=self.settings.memory_limit,
                        pids=self.settings.pids_limit, output=1 << 20,
                        disk=self.settings.disk_limit)
        files = {"check.sh": f"{host.run_command} {checker_protocol.ARGS}\n".encode(),
                 checker_protocol.INPUT: case.input.encode(), checker_protocol.OUTPUT: output,
                 checker_protocol.ANSWER: case.standard.encode()}
        workdir = make_workdir(self.task.id, self.settings, "-check")
        try:
            self._fill(workdir, self.checker.artifacts, files, limits)
            self.sandbox.prepare_workdir(workdir)
            spec = RunSpec(argv=["bash", "check.sh"], workdir=workdir, env=dict(STEP_ENV),
                           limits=limits)
            outcome = self.sandbox.run(spec, self.cancel)
        except (OSError, CopyLimit) as exc:
            return Verdict.INTERNAL_ERROR, f"checker could not run: {exc}"
        finally:
            remove_workdir(workdir, self.sandbox)
        comment = (outcome.stderr or outcome.stdout)[:4096].decode("utf-8", errors="replace")
        return checker_protocol.decide(outcome.report, comment)


def judge_task(task: Task, sandbox: Sandbox, settings: ExecutorSettings,
               context: JudgeContext, cancel: threading.Event,
               on_status: Callable[[int], None],
               signals: SignalBox | None = None) -> tuple[int, Result]:
    """Judge `task` (khala.model.judged) to its end. Never raises: a failure of the executor
    itself ends the task as Unknown error with an internal-error verdict."""
    scratch = None
    try:
        scratch = tempfile.mkdtemp(prefix="khala-judge-", dir=settings.work_dir or None)
        judge = Judge(task, sandbox, settings, context, cancel)
        judge.signals = signals
        return judge.run(on_status, scratch)
    except Exception:  # our own failure: the task ends as Unknown error, the node lives
        log.exception("judged task %s failed inside the executor", task.id)
        judgement = Judgement(verdict=Verdict.INTERNAL_ERROR, message="executor failure")
        return Status.UNKNOWN_ERROR, Result(compile_error=INTERNAL_ERROR, judgement=judgement)
    finally:
        if scratch is not None:
            remove_tree(scratch)


def run_any(task: Task, sandbox: Sandbox, settings: ExecutorSettings, context: JudgeContext,
            cancel: threading.Event, on_status: Callable[[int], None],
            signals: SignalBox | None = None,
            stream: TaskStream | None = None,
            areas: WorkAreas | None = None) -> tuple[int, Result]:
    """Run a task as it asks: judged (cases, verdicts) or plain (khala/executor/runner.py,
    its work dir from `areas` when given).
    `stream` (live output and input, docs/streaming.md) serves plain tasks only.
    API v2 signals in `signals` reach the running step (of a judged task: its compile step
    or a running case; with cases in parallel, the case that started last)."""
    if judged(task):
        return judge_task(task, sandbox, settings, context, cancel, on_status, signals)
    return run_task(task, sandbox, settings, cancel, on_status, signals, stream, areas)
