"""An interactive case on the executor: the contestant's program and the jury's interactor, each
in its own sandbox, connected by two pipes (program stdout → interactor stdin, interactor
stdout → program stdin), started together. What their runs decide is pure
(khala/judging/interaction.py); docs/judging.md, "Interactors".

The two steps are started together, each an ordinary step (a warm box's, when the sandbox has
them): they find each other through two named pipes in their work dirs, which their scripts
open before the command runs (khala/executor/channels.py), so each side sees the end of the
other's stream when the other ends. Both have their limits. When one side ends the other is
given a grace period and then ended too; a deadlock ends at the program's wall limit.

The task's execute options (environment, working directory, CPU rate, network) are the
program's alone: the interactor is the jury's and runs as every jury program does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from khala.errors import InvalidInput
from khala.executor import channels
from khala.executor.build import STEP_ENV
from khala.executor.caserun import (
    CHECKER_OUTPUT,
    CaseEnv,
    Executed,
    check,
    failed_files,
    files_out,
    fill,
    place_jury_case,
    program_workdir,
    run_limits,
    text,
)
from khala.executor.outfiles import collect
from khala.executor.stepopts import prepared
from khala.executor.workdirs import CopyLimit, make_workdir, remove_workdir
from khala.judging import checker as checker_protocol
from khala.judging.interaction import Sides, decide
from khala.model import Case, Reason, Verdict
from khala.rules.limits import EXECUTE_CPU, EXECUTE_MEMORY
from khala.sandbox.base import Limits, RunOutcome, RunSpec
from khala.sandbox.core import internal_error
from khala.zipcheck import ExtractLimit

PROGRAM_GRACE = 1.0  # seconds the program may still run after the interactor ended
INTERACTOR_GRACE = 5.0  # seconds the interactor may still run after the program ended
RELEASE_EVERY = 0.05  # seconds between unblocking opens once one side has ended
DEFAULT_WALL = 10.0  # the program's wall limit when the case has none and no CPU limit either


class Linked(threading.Event):
    """An event that also reads set when `parent` (the task's cancel) is."""

    def __init__(self, parent: threading.Event) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or self.parent.is_set()

    def own(self) -> bool:
        """Whether this event itself was set (not only its parent)."""
        return super().is_set()


@dataclass
class Interacted:
    """An interactive case's outcome: the program's run and files, the decision, and the
    interactor's output file (for a checker)."""

    executed: Executed
    verdict: Verdict
    message: str
    points: float


def program_limits(env: CaseEnv, case: Case) -> Limits:
    """The program's limits; a wall limit always (a deadlock must end): the case's, else
    twice its CPU limit and a second, else DEFAULT_WALL."""
    limits = run_limits(env, case)
    if not limits.wall_time:
        limits.wall_time = 2.0 * limits.cpu_time + 1 if limits.cpu_time else DEFAULT_WALL
    return limits


def interactor_limits(env: CaseEnv, program: Limits) -> Limits:
    """The interactor's own limits (clamped to the policy); its wall limit by default outlasts
    the program's by its grace, so a deadlock is the program's to end."""
    spec, s = env.task.execute.interactor, env.settings
    assert spec is not None and program.wall_time is not None
    wall = float(spec.timeout) if spec.timeout else program.wall_time + INTERACTOR_GRACE
    return Limits(wall_time=wall, cpu_time=EXECUTE_CPU.within(spec.cpu_limit, s, None),
                  memory=EXECUTE_MEMORY.within(spec.memory_limit, s, s.memory_limit),
                  pids=s.pids_limit, output=CHECKER_OUTPUT, disk=s.disk_limit)


class Pair:
    """The two runs of one interactive case, started together, each ending the other."""

    def __init__(self, env: CaseEnv, program: RunSpec, interactor: RunSpec) -> None:
        self.env, self.program, self.interactor = env, program, interactor
        self.program_done = threading.Event()
        self.interactor_done = threading.Event()
        self.stop_program = Linked(env.cancel)
        self.stop_interactor = Linked(env.cancel)
        self.interactor_outcome: RunOutcome | None = None
        self.program_outcome: RunOutcome | None = None

    def _release_until(self, other_done: threading.Event, grace: float) -> bool:
        """One side ended: keep the other from waiting for it in `open` while it is given
        `grace` seconds to end. Whether it ended within them."""
        deadline = time.monotonic() + grace
        while True:
            channels.release(self.interactor.workdir)
            left = deadline - time.monotonic()
            if left <= 0:
                return other_done.is_set()
            if other_done.wait(min(RELEASE_EVERY, left)):
                return True

    def _interactor_side(self) -> None:
        try:
            self.interactor_outcome = self.env.sandbox.run(self.interactor, self.stop_interactor)
        finally:
            self.interactor_done.set()
        if not self._release_until(self.program_done, PROGRAM_GRACE):
            self.stop_program.set()

    def run(self) -> Sides:
        start = time.monotonic()
        thread = threading.Thread(target=self._interactor_side, daemon=True,
                                  name=f"khala-interactor-{self.env.task.id}")
        thread.start()
        try:
            program = self.env.sandbox.run(self.program, self.stop_program)
        finally:
            self.program_done.set()
        self.program_outcome = program
        if not self._release_until(self.interactor_done, INTERACTOR_GRACE):
            self.stop_interactor.set()
        thread.join()
        interactor = self.interactor_outcome or internal_error("the interactor failed", start)
        cancelled = self.env.cancel.is_set()
        return Sides(
            program=program.report, interactor=interactor.report, stderr=text(interactor.stderr),
            program_stopped=(not cancelled and self.stop_program.own()
                             and program.report.reason == Reason.CANCELLED),
            interactor_stopped=(not cancelled and self.stop_interactor.own()
                                and interactor.report.reason == Reason.CANCELLED))


def interact(env: CaseEnv, index: int, case: Case) -> Interacted:
    """Run the interactive `case` (the task's case `index`) to its verdict (and the
    checker's, when the interactor accepted and the task has one)."""
    jury = env.interactor
    assert jury is not None
    s = env.settings
    limits = program_limits(env, case)
    jury_limits = interactor_limits(env, limits)
    program_dir = make_workdir(env.task.id, s, "-case")
    jury_dir = make_workdir(env.task.id, s, "-interactor")
    try:
        program_workdir(env, program_dir,
                        {"execute.sh": channels.program_script(env.run_command).encode()}, limits)
        channels.make(program_dir)
        program = prepared(env.sandbox, RunSpec(
            argv=["bash", "execute.sh"], workdir=program_dir, env=dict(STEP_ENV), limits=limits,
            signals=env.signals, root=env.root), env.task.execute.options)  # the interactor's
        # options and root are its own (the host's)
        if isinstance(program, RunOutcome):
            return Interacted(Executed(program), Verdict.INTERNAL_ERROR, program.detail, 0.0)
        fill(env, jury_dir, jury.artifacts, {
            "interact.sh": channels.jury_script(
                f"{jury.host.run_command} {checker_protocol.ARGS}").encode(),
            checker_protocol.OUTPUT: b""}, jury_limits)
        env.sandbox.prepare_workdir(jury_dir)
        channels.share(env.sandbox, program_dir, jury_dir)
        place_jury_case(env, jury_dir, index, case)
        pair = Pair(env, program, RunSpec(argv=["bash", "interact.sh"], workdir=jury_dir,
                                          env=dict(STEP_ENV), limits=jury_limits))
        sides = pair.run()
        assert pair.program_outcome is not None
        executed = Executed(pair.program_outcome,
                            files_out(env, program_dir, pair.program_outcome, limits.output))
        sides.program = executed.outcome.report
        verdict, message, points = decide(sides, case.weight)
        if verdict == Verdict.ACCEPTED and env.checker is not None:
            written = collect(jury_dir, [checker_protocol.OUTPUT], s.result_limit).files[0]
            verdict, message, points = check(env, index, case, written.content,
                                             executed.files)
        return Interacted(executed, verdict, message, points)
    except (OSError, CopyLimit, ExtractLimit, InvalidInput) as exc:
        outcome = failed_files(exc)
        return Interacted(Executed(outcome), Verdict.INTERNAL_ERROR, str(exc), 0.0)
    finally:
        remove_workdir(program_dir, env.sandbox)
        remove_workdir(jury_dir, env.sandbox)
