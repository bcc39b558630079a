"""Interactive problems: what the two runs of a case — the contestant's program and the jury's
interactor, connected by pipes — decide together. Pure (docs/judging.md, "Interactors").

The interactor runs as `<run command> input.txt output.txt answer.txt` (testlib's order: the
case's input, a file it may write for a checker, the expected answer), reads the program's
output on its stdin and writes the program's input on its stdout; its exit code decides as a
checker's does (khala/judging/checker.py). The rules, first that applies:

1. The interactor's own failure — it crashed (a signal other than SIGPIPE), hit a limit, exited
   3 or with a code testlib does not define, did not end within its grace after the program
   ended — is an internal error, whatever the program did.
2. The interactor was killed by SIGPIPE (it wrote after the program had gone): the program's
   run verdict if it failed, else wrong answer (the program ended before the dialogue did).
3. The program was ended by Khala after the interactor had ended (it did not end within its
   grace): the interactor's verdict if it is not accepted, else time limit.
4. The program went past a limit (time, memory, output): that verdict; a wall limit with
   little CPU used says the two sides waited on each other (idleness).
5. The program was killed by SIGPIPE or exited non-zero — what a program does when the
   interactor decided and closed the pipes (a Python program's input() then fails): the
   interactor's verdict if it is not accepted, else runtime error. Any other signal (a crash)
   is a runtime error whatever the interactor said.
6. Otherwise the interactor's verdict.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from khala.judging import checker
from khala.judging.verdicts import run_message, run_verdict
from khala.model import Reason, StepReport, Verdict

IDLE_SHARE = 0.5  # a wall-limited program that used less CPU than this share of it was idle
LIMITS = (Reason.TIME_LIMIT, Reason.WALL_LIMIT, Reason.MEMORY_LIMIT, Reason.OUTPUT_LIMIT,
          Reason.PIDS_LIMIT)


@dataclass
class Sides:
    """What the two runs of one interactive case did."""

    program: StepReport
    interactor: StepReport
    stderr: str = ""  # the interactor's comment (stderr), cut
    program_stopped: bool = False  # Khala ended the program after the interactor ended
    interactor_stopped: bool = False  # Khala ended the interactor after the program ended


def _program_failure(report: StepReport) -> tuple[Verdict, str]:
    verdict = run_verdict(report)
    assert verdict is not None
    if report.reason == Reason.WALL_LIMIT and report.time < IDLE_SHARE * report.wall_time:
        return verdict, (f"idle: the wall time limit passed while the program waited "
                         f"(CPU {report.time:.3f} s of {report.wall_time:.3f} s wall); "
                         "the program and the interactor waited on each other?")
    return verdict, run_message(report)


def _interactor_failed(sides: Sides) -> str | None:
    """Why the interactor itself failed (rule 1), or None."""
    report = sides.interactor
    if sides.interactor_stopped:
        return "the interactor did not end after the program ended"
    if report.signal == signal.SIGPIPE:
        return None
    if report.reason not in (Reason.OK, Reason.NONZERO_EXIT) or report.exit_code is None:
        return f"the interactor did not finish ({report.reason}: {run_message(report)})"
    return None  # its exit code decides (3 and unknown codes: internal error, with a comment)


def decide(sides: Sides, weight: int) -> tuple[Verdict, str, float]:
    """The case's verdict, message and points."""
    failure = _interactor_failed(sides)
    if failure is not None:
        return Verdict.INTERNAL_ERROR, failure, 0.0
    program = sides.program
    if sides.interactor.signal == signal.SIGPIPE:
        if run_verdict(program) is not None:
            return (*_program_failure(program), 0.0)
        return (Verdict.WRONG_ANSWER, "the program ended before the interactor was done", 0.0)
    verdict, message, points = checker.decide(sides.interactor, sides.stderr, "", weight,
                                              who="interactor")
    if verdict == Verdict.INTERNAL_ERROR:
        return verdict, message, points
    if sides.program_stopped:
        if verdict != Verdict.ACCEPTED:
            return verdict, message, points
        return (Verdict.TIME_LIMIT, "the program did not end after the interactor ended", 0.0)
    if program.reason in LIMITS:
        return (*_program_failure(program), 0.0)
    if run_verdict(program) is not None:
        after_jury = program.signal in (None, signal.SIGPIPE)
        if verdict != Verdict.ACCEPTED and after_jury:
            return verdict, message, points
        return (*_program_failure(program), 0.0)
    return verdict, message, points
