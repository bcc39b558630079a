"""The pure parts of groups, partial points, interactors and files out: scoring, the checker's
partial points, the interaction's decision, validation, and reading files out of a work dir."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from khala.config import JudicatorSettings
from khala.errors import InvalidInput
from khala.executor.outfiles import collect
from khala.judging import checker, interaction, scoring
from khala.judging.validate import check_judging
from khala.model import (
    Case,
    CaseResult,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    Group,
    GroupPolicy,
    Interactor,
    Reason,
    StepReport,
    Task,
    Verdict,
)

A, W, P, S = Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.PARTIAL, Verdict.SKIPPED
SUM, MIN = GroupPolicy.SUM, GroupPolicy.MIN


def result(verdict: Verdict, weight: int = 1, share: float = 0.0) -> CaseResult:
    return CaseResult(verdict=verdict, weight=weight,
                      points=scoring.case_points(verdict, weight, weight * share))


# ----------------------------------------------------------------------------- scoring


def test_sum_group_scales_the_points_earned() -> None:
    cases = [Case(group="g", weight=1), Case(group="g", weight=3)]
    [g], score, top = scoring.score_groups([Group("g", 40, SUM)], cases,
                                           [result(A), result(P, 3, 0.5)])
    assert (g.score, g.verdict, score, top) == (40 * 2.5 / 4, P, 25.0, 40.0)


def test_min_group_is_all_or_nothing_and_takes_the_smallest_share() -> None:
    cases = [Case(group="g"), Case(group="g")]
    groups = [Group("g", 30, MIN)]
    assert scoring.score_groups(groups, cases, [result(A), result(W)])[1] == 0.0
    assert scoring.score_groups(groups, cases, [result(A), result(A)])[1] == 30.0
    assert scoring.score_groups(groups, cases, [result(P, 1, 0.25), result(A)])[1] == 7.5


def test_a_failed_dependency_skips_a_group_and_those_after_it() -> None:
    cases = [Case(group="a"), Case(group="b"), Case(group="c"), Case(group="d")]
    groups = [Group("a", 10, SUM), Group("b", 20, SUM, ["a"]), Group("c", 30, SUM, ["b"]),
              Group("d", 40, SUM)]
    found, score, top = scoring.score_groups(groups, cases, [result(W), result(A), result(A),
                                                             result(A)])
    assert [(g.name, g.score, g.skipped) for g in found] == [
        ("a", 0.0, False), ("b", 0.0, True), ("c", 0.0, True), ("d", 40.0, False)]
    assert found[2].message == "dependency 'b' did not pass"
    assert (score, top) == (40.0, 100.0)


def test_scores_read_as_a_person_expects() -> None:
    cases = [Case(group="g") for _ in range(3)]
    found, score, _ = scoring.score_groups([Group("g", 0.3, SUM)], cases,
                                           [result(A), result(A), result(A)])
    assert score == 0.3 and found[0].score == 0.3
    assert scoring.exact(-0.0) == 0.0 and str(scoring.exact(-0.0)) == "0.0"


def test_skip_reason_for_skip_failed_groups() -> None:
    cases = [Case(group="m"), Case(group="m"), Case(group="s"), Case(group="t")]
    groups = [Group("m", 1, MIN), Group("s", 1, SUM, ["m"]), Group("t", 1, SUM, ["s"])]
    assert scoring.skip_reason(1, groups, cases, {0: result(A)}) is None
    failed = {0: result(W)}
    assert scoring.skip_reason(1, groups, cases, failed) == "group 'm' failed already"
    assert scoring.skip_reason(2, groups, cases, failed) == "dependency 'm' failed"
    assert scoring.skip_reason(3, groups, cases, failed) == "dependency 'm' failed"
    sum_group = [Group("m", 1, SUM)]
    assert scoring.skip_reason(1, sum_group, cases[:2], failed) is None  # a sum group goes on


# ----------------------------------------------------------------------------- checker


def points(code: int, stderr: str, stdout: str = "", weight: int = 4
           ) -> tuple[Verdict, str, float]:
    reason = Reason.OK if code == 0 else Reason.NONZERO_EXIT
    return checker.decide(StepReport(exit_code=code, reason=reason), stderr, stdout, weight)


def test_partial_points_are_read_from_the_points_line() -> None:
    assert points(7, "points 0.25 one of four\n")[0::2] == (P, 1.0)
    assert points(7, "", "points 0.5\n")[0::2] == (P, 2.0)  # stdout when stderr has none
    assert points(7, "note\npoints 1.0000000000\n")[0::2] == (A, 4.0)
    assert points(7, "points 0\n")[0::2] == (P, 0.0)


@pytest.mark.parametrize("stderr", ["", "points\n", "points half\n", "points 1.5\n",
                                    "points -0.1\n", "points nan\n", "points inf\n"])
def test_bad_partial_points_are_the_checkers_failure(stderr: str) -> None:
    assert points(7, stderr)[0] == Verdict.INTERNAL_ERROR


def test_exit_codes_of_the_field() -> None:
    assert [points(code, "why")[0] for code in (0, 1, 2, 3, 4, 8, 5, 42)] == [
        A, W, W, Verdict.INTERNAL_ERROR, W, W, Verdict.INTERNAL_ERROR, Verdict.INTERNAL_ERROR]
    assert points(2, "spaces")[1] == "presentation error: spaces"


# ----------------------------------------------------------------------------- interaction


def ended(code: int | None = 0, sig: int | None = None, reason: Reason | None = None,
          cpu: float = 0.1, wall: float = 0.2) -> StepReport:
    if reason is None:
        reason = (Reason.SIGNALED if sig is not None else
                  Reason.OK if code == 0 else Reason.NONZERO_EXIT)
    return StepReport(exit_code=code if sig is None else None, signal=sig, reason=reason,
                      time=cpu, wall_time=wall)


def decide(program: StepReport, jury: StepReport, stderr: str = "",
           **flags: bool) -> tuple[Verdict, str, float]:
    return interaction.decide(interaction.Sides(program, jury, stderr, **flags), 2)


def test_the_interactor_decides_when_the_program_ended_normally() -> None:
    assert decide(ended(), ended(0))[0::2] == (A, 2.0)
    assert decide(ended(), ended(1), "wrong guess")[:2] == (W, "wrong answer: wrong guess")
    assert decide(ended(), ended(7), "points 0.5")[0::2] == (P, 1.0)


def test_the_interactors_own_failure_is_an_internal_error() -> None:
    for jury in (ended(sig=signal.SIGSEGV), ended(None, reason=Reason.MEMORY_LIMIT),
                 ended(3), ended(42)):
        assert decide(ended(1), jury)[0] == Verdict.INTERNAL_ERROR
    assert decide(ended(), ended(None, reason=Reason.CANCELLED),
                  interactor_stopped=True)[1] == (
        "the interactor did not end after the program ended")


def test_program_failures_against_the_interactors_verdict() -> None:
    tle = ended(None, sig=9, reason=Reason.TIME_LIMIT, cpu=1.0, wall=1.1)
    assert decide(tle, ended(1))[0] == Verdict.TIME_LIMIT  # a limit is the program's own
    crash = ended(sig=signal.SIGSEGV)
    assert decide(crash, ended(1))[0] == Verdict.RUNTIME_ERROR  # a crash, whatever was said
    assert decide(ended(1), ended(1), "too many")[0] == W  # it read EOF after the verdict
    assert decide(ended(sig=signal.SIGPIPE), ended(2))[0] == W
    assert decide(ended(1), ended(0))[0] == Verdict.RUNTIME_ERROR


def test_idleness_and_stopped_program() -> None:
    idle = ended(None, sig=9, reason=Reason.WALL_LIMIT, cpu=0.01, wall=2.0)
    verdict, message, _ = decide(idle, ended(1))
    assert verdict == Verdict.TIME_LIMIT and message.startswith("idle:")
    stopped = ended(None, sig=9, reason=Reason.CANCELLED)
    assert decide(stopped, ended(0), program_stopped=True)[:2] == (
        Verdict.TIME_LIMIT, "the program did not end after the interactor ended")
    assert decide(stopped, ended(1), program_stopped=True)[0] == W


def test_the_interactor_killed_by_sigpipe_defers_to_the_program() -> None:
    jury = ended(sig=signal.SIGPIPE)
    assert decide(ended(), jury)[0] == W
    assert decide(ended(sig=signal.SIGSEGV), jury)[0] == Verdict.RUNTIME_ERROR


# ----------------------------------------------------------------------------- validation


POLICY = JudicatorSettings()


def task(**execute: object) -> Task:
    return Task(compile=Compile(language="python3"),
                execute=Execute(**execute))  # type: ignore[arg-type]


@pytest.mark.parametrize(("execute", "message"), [
    ({"cases": [Case(group="a")], "groups": [Group("a"), Group("a")]}, "named twice"),
    ({"cases": [Case(group="a")], "groups": [Group("a b")]}, "name must be"),
    ({"cases": [Case(group="a")], "groups": [Group("a", float("nan"))]}, "points"),
    ({"cases": [Case(group="a")], "groups": [Group("a", -1)]}, "points"),
    ({"cases": [Case(group="a")], "groups": [Group("a", deps=["a"])]}, "depends on itself"),
    ({"cases": [Case(group="a")], "groups": [Group("a", deps=["z"])]}, "which is no group"),
    ({"cases": [Case(group="a"), Case(group="b")],
      "groups": [Group("a", deps=["b"]), Group("b", deps=["a"])]}, "cycle"),
    ({"cases": [Case(group="a"), Case()], "groups": [Group("a")]}, "names no group"),
    ({"cases": [Case(group="x")], "groups": [Group("a")]}, "is no group"),
    ({"cases": [Case(group="a")]}, "has no groups"),
    ({"groups": [Group("a")]}, "need test cases"),
    ({"skip_failed_groups": True}, "needs groups"),
    ({"interactor": Interactor("cobol", "x")}, "no language preset"),
    ({"interactor": Interactor("python3", "")}, "a language and a source"),
    ({"interactor": Interactor("python3", "x", timeout=0)}, "interactor timeout"),
    ({"interactor": Interactor("python3", "x"), "interactive": True}, "cannot go together"),
    ({"interactor": Interactor("python3", "x"), "compare": Compare(CompareMode.TOKENS)},
     "interactor decides"),
    ({"outputs": ["a", "a"]}, "named twice"),
    ({"outputs": ["/abs"]}, "must be relative"),
    ({"outputs": ["a/../b"]}, "must be relative"),
    ({"outputs": ["x"] * 65}, "more than the limit"),
])
def test_bad_groups_interactors_and_outputs_are_refused(execute: dict[str, object],
                                                        message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_judging(task(**execute), POLICY)


def test_good_ones_pass() -> None:
    check_judging(task(cases=[Case(group="a"), Case(group="b")],
                       groups=[Group("a", 1.5), Group("b", 2, MIN, ["a"])],
                       skip_failed_groups=True, outputs=["out/a.bin"]), POLICY)
    check_judging(task(interactor=Interactor("python3", "x", 2, 1, 1 << 20),
                       compare=Compare(CompareMode.CHECKER, checker=Checker("python3", "y"))),
                  POLICY)


# ----------------------------------------------------------------------------- files out


def test_collect_reads_regular_files_only_within_the_budget(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.bin").write_bytes(b"\x00" * 10)
    (tmp_path / "b.txt").write_bytes(b"0123456789")
    os.symlink("/etc/hostname", tmp_path / "link")
    os.symlink(str(tmp_path / "d"), tmp_path / "dirlink")
    os.mkfifo(tmp_path / "fifo")
    found = collect(str(tmp_path), ["d/a.bin", "link", "dirlink/a.bin", "fifo", "none", "b.txt"],
                    15)
    assert [(f.name, f.content, f.size, f.error) for f in found.files] == [
        ("d/a.bin", b"\x00" * 10, 10, ""),
        ("link", b"", 0, "not a regular file"),
        ("dirlink/a.bin", b"", 0, "not a regular file"),
        ("fifo", b"", 0, "not a regular file"),
        ("none", b"", 0, "missing"),
        ("b.txt", b"", 10, "larger than the output limit"),  # 5 bytes were left
    ]
    assert found.over
