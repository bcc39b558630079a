"""Judging a task on the executor: build once (khala/executor/build.py), then run every test
case in its own fresh sandbox work dir (khala/executor/caserun.py; an interactive case's two
runs: interact.py), compare (or ask the checker) and give verdicts, points and the score.

Cases may run at once on slots the executor lends (`CaseSlots`): each extra slot is a thread
running cases from the same queue. With stop_on_failure or skip_failed_groups the cases run
one by one, so "the cases after the first failure" is well defined. The decisions are pure
(khala/judging/).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from khala.config import ExecutorSettings
from khala.errors import KhalaError, SandboxUnavailable
from khala.executor.build import Build, Program, build
from khala.executor.casefiles import CaseFiles
from khala.executor.caserun import CaseEnv, Executed, Jury, check, execute
from khala.executor.caserun import case_limits as case_limits
from khala.executor.compile_cache import CompileCache
from khala.executor.image_languages import ImageLanguages
from khala.executor.images import ImageRoots
from khala.executor.interact import interact
from khala.executor.problems import ProblemTasks
from khala.executor.runner import INTERNAL_ERROR, compile_limits, run_task
from khala.executor.workareas import WorkAreas
from khala.judging.compare import compare
from khala.judging.presets import HostLanguage
from khala.judging.scoring import case_points, plain_score, score_groups, skip_reason
from khala.judging.verdicts import case_failed, overall, run_message, run_verdict
from khala.model import (
    FEATURE_IMAGES,
    Case,
    CaseResult,
    CompareMode,
    Judgement,
    OutputFile,
    Reason,
    Result,
    Status,
    StepReport,
    Task,
    Verdict,
    judged,
)
from khala.sandbox.base import RunOutcome, Sandbox, SignalBox
from khala.sandbox.fstree import remove_tree
from khala.streams.hub import TaskStream

log = logging.getLogger(__name__)

FILES_DROPPED = "not kept: the task's files out passed its result_limit"


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
    problems: ProblemTasks | None = None  # tasks naming a stored problem: its files, cached
    images: ImageRoots | None = None  # the images steps run in, unpacked once
    # the presets images carry, read once per image
    image_languages: ImageLanguages = field(default_factory=lambda: ImageLanguages())


def _cut(data: bytes, limit: int) -> str:
    return data[:limit].decode("utf-8", errors="replace")


@dataclass
class CaseRun:
    """One case's run: its outcome and its result (verdict decided)."""

    outcome: RunOutcome
    result: CaseResult


class Judge:
    """One judged task on one executor."""

    def __init__(self, task: Task, sandbox: Sandbox, settings: ExecutorSettings,
                 context: JudgeContext, cancel: threading.Event,
                 files: CaseFiles | None = None, roots: dict[str, str] | None = None) -> None:
        self.task, self.sandbox, self.settings = task, sandbox, settings
        self.roots = roots or {}  # "compile"/"execute" → the unpacked image the step runs in
        self.files = files  # a stored problem's cases: inputs and answers are cached files
        self.context, self.cancel = context, cancel
        self.cases = task.execute.cases or [Case(input=task.execute.input,
                                                 standard=task.execute.standard)]
        spec = task.execute.compare
        self.compare = spec
        self.mode = spec.mode if spec is not None else CompareMode.LINES
        self.program: Build | None = None
        self.checker: Build | None = None
        self.interactor: Build | None = None
        self.env: CaseEnv | None = None
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

    def _language(self, name: str, root: str | None = None) -> HostLanguage | None:
        """The preset `name`: the image's when the step runs in an image that carries
        presets (docs/images.md), else the host's."""
        if root is not None:
            found = self.context.image_languages.of(root)
            if found:
                return found.get(name)
        return self.context.languages.get(name)

    def _prepare(self, scratch: str) -> tuple[int, Result] | None:
        """Build the program, the checker and the interactor; a finished (failed) task when
        one of them fails."""
        task, s = self.task, self.settings
        host = None
        if task.compile.language:
            host = self._language(task.compile.language, self.roots.get("compile"))
            if host is None:
                where = "in the task's image" if "compile" in self.roots else "on this executor"
                return self._internal(f"language {task.compile.language} is not available "
                                      f"{where}")
            self.run_command = host.run_command
        program = Program(source_zip=task.compile.source, language=host,
                          command=task.compile.command, limits=compile_limits(task, s),
                          signals=self.signals, extra=self._extras(),
                          options=task.compile.options,
                          root=self.roots.get("compile"),
                          image=task.compile.image.sha256 if task.compile.image else "")
        os.mkdir(os.path.join(scratch, "program"))
        self.program = build(program, self.sandbox, s, self.context.cache, self.cancel,
                             os.path.join(scratch, "program"), task.id)
        if not self.program.ok:
            return self._build_failed(self.program, "")
        assert self.program.artifacts is not None
        self.env = CaseEnv(task=task, sandbox=self.sandbox, settings=s, cancel=self.cancel,
                           artifacts=self.program.artifacts, run_command=self.run_command,
                           signals=self.signals, files=self.files,
                           root=self.roots.get("execute"),
                           time_factor=host.preset.time_factor if host is not None else 1.0)
        if self.mode == CompareMode.CHECKER:
            spec = self.compare.checker if self.compare is not None else None
            failed = self._prepare_jury(scratch, "checker", spec.language if spec else "",
                                        spec.source if spec else "")
            if failed is not None:
                return failed
        if task.execute.interactor is not None:
            spec_i = task.execute.interactor
            return self._prepare_jury(scratch, "interactor", spec_i.language, spec_i.source)
        return None

    def _prepare_jury(self, scratch: str, role: str, language: str, source: str
                      ) -> tuple[int, Result] | None:
        """Build the checker or the interactor (one source file in a preset language)."""
        host = self._language(language) if language else None
        if host is None:
            return self._internal(f"the {role}'s language is not available on this executor")
        program = Program(source_file=(host.preset.source, source), language=host,
                          limits=compile_limits(self.task, self.settings),
                          extra=self._extras())
        os.mkdir(os.path.join(scratch, role))
        built = build(program, self.sandbox, self.settings, self.context.cache, self.cancel,
                      os.path.join(scratch, role), f"{self.task.id}-{role[:3]}")
        setattr(self, role, built)
        if not built.ok:
            return self._build_failed(built, f"the {role} did not compile: ")
        assert self.env is not None
        setattr(self.env, role, Jury(built, host))
        return None

    def _extras(self) -> dict[str, str]:
        """A stored problem's extra files, beside every source it builds (headers)."""
        return dict(self.files.extras) if self.files is not None else {}

    def _judgement(self, verdict: Verdict, message: str = "") -> Judgement:
        cases = [CaseResult(verdict=Verdict.SKIPPED, weight=c.weight) for c in self.cases]
        builds = [b for b in (self.program, self.checker, self.interactor) if b is not None]
        judgement = Judgement(verdict=verdict, cases=cases, language=self._version(),
                              compiles=sum(b.compiles for b in builds),
                              cache_hit=bool(self.program and self.program.cache_hit),
                              message=message)
        self._score(judgement)
        return judgement

    def _score(self, judgement: Judgement) -> None:
        groups = self.task.execute.groups
        if groups:
            judgement.groups, judgement.score, judgement.max_score = score_groups(
                groups, self.cases, judgement.cases)
        else:
            judgement.score, judgement.max_score = plain_score(judgement.cases)

    def _version(self) -> str:
        host = self._language(self.task.compile.language, self.roots.get("compile"))
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
        if failed.internal or prefix:  # a jury program that does not build is the jury's
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
        _bound_files(judgement.cases, limit)
        judgement.verdict = overall(judgement.cases)
        self._score(judgement)
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

    def _one_by_one(self) -> bool:
        e = self.task.execute
        return e.stop_on_failure or e.skip_failed_groups or len(self.cases) == 1

    def _run_cases(self) -> list[CaseRun | None]:
        runs: list[CaseRun | None] = [None] * len(self.cases)
        if self._one_by_one():
            done: dict[int, CaseResult] = {}
            for index in range(len(self.cases)):
                run = runs[index] = self._case_in_turn(index, done)
                done[index] = run.result
                if self.cancel.is_set() or (self.task.execute.stop_on_failure
                                            and case_failed(run.result.verdict)):
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

    def _case_in_turn(self, index: int, done: dict[int, CaseResult]) -> CaseRun:
        """A case run one by one: skipped (skip_failed_groups) when its group or a dependency
        failed already, else run."""
        if self.task.execute.skip_failed_groups:
            why = skip_reason(index, self.task.execute.groups, self.cases, done)
            if why is not None:
                case = self.cases[index]
                return CaseRun(RunOutcome(b"", b"", StepReport(reason=Reason.CANCELLED)),
                               CaseResult(verdict=Verdict.SKIPPED, weight=case.weight,
                                          message=f"skipped: {why}"))
        return self._case(index)

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
        env = self.env
        assert env is not None
        if env.interactor is not None:
            done = interact(env, index, case)
            executed, decided = done.executed, (done.verdict, done.message, done.points)
        else:
            executed = execute(env, index, case)
            decided = self._decide(index, case, executed)
        report = executed.outcome.report
        limit = self.settings.case_output_limit
        verdict, message, partial = decided
        result = CaseResult(verdict=verdict, message=message, weight=case.weight,
                            points=case_points(verdict, case.weight, partial),
                            time=report.time, wall_time=report.wall_time, memory=report.memory,
                            exit_code=report.exit_code, signal=report.signal,
                            output=_cut(executed.outcome.stdout, limit),
                            error=_cut(executed.outcome.stderr, limit), files=executed.files)
        return CaseRun(executed.outcome, result)

    def _decide(self, index: int, case: Case, executed: Executed
                ) -> tuple[Verdict, str, float]:
        """A plain case's verdict, message and (partial) points from its run."""
        report = executed.outcome.report
        verdict = run_verdict(report)
        if verdict is not None:
            return verdict, run_message(report), 0.0
        if self.mode == CompareMode.CHECKER:
            assert self.env is not None
            return check(self.env, index, case, executed.outcome.stdout, executed.files)
        standard = case.standard
        if self.files is not None:  # read only up to the output cap: no output is longer
            assert self.env is not None
            bound = case_limits(self.task, case, self.settings, self.env.task_limits).output
            answer = self.files.answer_text(index, bound)
            if answer is None:
                return Verdict.WRONG_ANSWER, ("the answer is longer than the output limit: no "
                                              "output can match it"), 0.0
            standard = answer
        got = executed.outcome.stdout.decode("utf-8", errors="replace")
        difference = compare(self.compare, got, standard)
        if difference:
            return Verdict.WRONG_ANSWER, difference, 0.0
        return Verdict.ACCEPTED, "", float(case.weight)


def _bound_files(cases: list[CaseResult], limit: int) -> None:
    """Keep the cases' files out, in case order, within `limit` bytes in all (result_limit);
    the rest are listed with FILES_DROPPED (their verdicts stand: the checker saw them)."""
    left = limit
    for case in cases:
        kept: list[OutputFile] = []
        for item in case.files:
            if item.error or len(item.content) <= left:
                left -= len(item.content)
                kept.append(item)
            else:
                kept.append(OutputFile(name=item.name, size=item.size, error=FILES_DROPPED))
        case.files = kept


def judge_task(task: Task, sandbox: Sandbox, settings: ExecutorSettings,
               context: JudgeContext, cancel: threading.Event,
               on_status: Callable[[int], None],
               signals: SignalBox | None = None,
               roots: dict[str, str] | None = None) -> tuple[int, Result]:
    """Judge `task` (khala.model.judged) to its end. Never raises: a failure of the executor
    itself ends the task as Unknown error with an internal-error verdict."""
    scratch = None
    try:
        scratch = tempfile.mkdtemp(prefix="khala-judge-", dir=settings.work_dir or None)
        if task.execute.problem is not None:
            return _judge_problem(task, sandbox, settings, context, cancel, on_status,
                                  signals, scratch, roots)
        judge = Judge(task, sandbox, settings, context, cancel, roots=roots)
        judge.signals = signals
        return judge.run(on_status, scratch)
    except Exception:  # our own failure: the task ends as Unknown error, the node lives
        log.exception("judged task %s failed inside the executor", task.id)
        judgement = Judgement(verdict=Verdict.INTERNAL_ERROR, message="executor failure")
        return Status.UNKNOWN_ERROR, Result(compile_error=INTERNAL_ERROR, judgement=judgement)
    finally:
        if scratch is not None:
            remove_tree(scratch)


def _judge_problem(task: Task, sandbox: Sandbox, settings: ExecutorSettings,
                   context: JudgeContext, cancel: threading.Event,
                   on_status: Callable[[int], None], signals: SignalBox | None,
                   scratch: str, roots: dict[str, str] | None) -> tuple[int, Result]:
    """Judge a task naming a stored problem: its version's files first (khala/executor/
    problems.py); when they cannot be had, the task ends with an internal error saying why."""
    if context.problems is None:
        return _failed("this executor keeps no file cache: it cannot judge stored problems")
    with contextlib.ExitStack() as held:
        try:
            expanded, files = held.enter_context(context.problems.prepared(task))
        except (KhalaError, OSError) as exc:
            log.warning("task %s: the problem's files: %s", task.id, exc)
            return _failed(f"the problem's files could not be had: {exc}")
        judge = Judge(expanded, sandbox, settings, context, cancel, files, roots)
        judge.signals = signals
        return judge.run(on_status, scratch)


def _failed(message: str) -> tuple[int, Result]:
    judgement = Judgement(verdict=Verdict.INTERNAL_ERROR, message=message)
    return Status.UNKNOWN_ERROR, Result(compile_error=f"[khala] {message}".encode(),
                                        judgement=judgement)


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
    steps = [(step, ref) for step, ref in (("compile", task.compile.image),
                                           ("execute", task.execute.image)) if ref is not None]
    with contextlib.ExitStack() as held:
        roots: dict[str, str] = {}
        if steps:
            try:
                paths = held.enter_context(_images(context, sandbox).holding(
                    [ref for _, ref in steps]))
            except (KhalaError, OSError) as exc:
                log.warning("task %s: its images: %s", task.id, exc)
                message = f"the task's image could not be had: {exc}"
                if judged(task):
                    return _failed(message)
                return Status.UNKNOWN_ERROR, Result(compile_error=f"[khala] {message}".encode())
            roots = {step: paths[ref.sha256] for step, ref in steps}
        if judged(task):
            return judge_task(task, sandbox, settings, context, cancel, on_status, signals,
                              roots)
        return run_task(task, sandbox, settings, cancel, on_status, signals, stream, areas,
                        roots)


def _no_images(context: JudgeContext, sandbox: Sandbox) -> str:
    """Why this executor cannot run a step in an image; "" when it can."""
    if sandbox.name != "bwrap":
        return ("this executor runs steps unsandboxed, on its host's root: a step in an "
                "image needs the bwrap sandbox")
    if context.images is None:
        return "this executor keeps no images"
    return ""


def features(sandbox: Sandbox, context: JudgeContext) -> list[str]:
    """What this executor can run beyond plain steps, named in its reports: the judicators
    give it a task in an image only when it names FEATURE_IMAGES (docs/rpc.md)."""
    return [] if _no_images(context, sandbox) else [FEATURE_IMAGES]


def _images(context: JudgeContext, sandbox: Sandbox) -> ImageRoots:
    """The executor's images; SandboxUnavailable when it cannot run a step in one."""
    why = _no_images(context, sandbox)
    if why or context.images is None:
        raise SandboxUnavailable(why)
    return context.images
