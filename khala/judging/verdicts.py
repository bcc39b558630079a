"""Verdicts: of one case from how its run ended, of the whole task from its cases. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from khala.model import CaseResult, Reason, StepReport, Verdict

# How a run that did not end OK reads as a verdict (the output is not compared then).
RUN_VERDICTS: dict[Reason, Verdict] = {
    Reason.TIME_LIMIT: Verdict.TIME_LIMIT,
    Reason.WALL_LIMIT: Verdict.TIME_LIMIT,
    Reason.MEMORY_LIMIT: Verdict.MEMORY_LIMIT,
    Reason.OUTPUT_LIMIT: Verdict.OUTPUT_LIMIT,
    Reason.NONZERO_EXIT: Verdict.RUNTIME_ERROR,
    Reason.SIGNALED: Verdict.RUNTIME_ERROR,
    Reason.PIDS_LIMIT: Verdict.RUNTIME_ERROR,
    Reason.INTERNAL_ERROR: Verdict.INTERNAL_ERROR,
    Reason.CANCELLED: Verdict.INTERNAL_ERROR,
}


def run_verdict(report: StepReport) -> Verdict | None:
    """The verdict a run decides by itself, or None when it ended OK and its output must be
    compared."""
    if report.reason == Reason.OK:
        return None
    return RUN_VERDICTS.get(report.reason, Verdict.INTERNAL_ERROR)


def run_message(report: StepReport) -> str:
    """A short human note on a failed run: the exit code or the signal."""
    if report.signal is not None:
        return f"killed by signal {report.signal}"
    if report.exit_code:
        return f"exit code {report.exit_code}"
    return str(report.reason)


def case_failed(verdict: Verdict) -> bool:
    return verdict not in (Verdict.ACCEPTED, Verdict.SKIPPED)


def overall(cases: Sequence[CaseResult]) -> Verdict:
    """The verdict of a task whose program was built: internal error when any case is (the
    result cannot be trusted), else the first failed case's in case order (partial counts as
    failed), else accepted. Its score: khala/judging/scoring.py."""
    if any(c.verdict == Verdict.INTERNAL_ERROR for c in cases):
        return Verdict.INTERNAL_ERROR
    failed = next((c.verdict for c in cases if case_failed(c.verdict)), None)
    if failed is not None:
        return failed
    if cases and all(c.verdict == Verdict.SKIPPED for c in cases):
        return Verdict.INTERNAL_ERROR
    return Verdict.ACCEPTED
