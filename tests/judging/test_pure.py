"""The pure judging package: comparison modes on edge cases, verdicts, the checker protocol,
the cache key and LRU index, presets and validation."""

from __future__ import annotations

import pytest

from khala.config import ExecutorSettings, JudicatorSettings
from khala.errors import InvalidInput
from khala.executor.judge import case_limits
from khala.judging import checker, compare, scoring, verdicts
from khala.judging.cache import Entry, Index, SourceFile, cache_key
from khala.judging.presets import PRESETS, HostLanguage, release_value, version_line
from khala.judging.validate import check_judging
from khala.model import (
    Case,
    CaseResult,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    Reason,
    StepReport,
    Task,
    Verdict,
    judged,
)

# ----------------------------------------------------------------------------- compare


@pytest.mark.parametrize(
    ("got", "want", "ok"),
    [
        ("1 2\n", "1 2\n", True),
        ("1 2  \n", "1 2\n", True),  # trailing spaces
        ("1 2\n\n\n", "1 2", True),  # trailing empty lines
        ("a\r\nb\r\n", "a\nb\n", True),  # CRLF
        ("a\rb", "a\nb", True),  # lone CR
        ("1  2\n", "1 2\n", False),  # inner spacing counts
        (" 1 2\n", "1 2\n", False),  # leading spaces count
        ("1 2\n3\n", "1 2\n", False),
        ("", "", True),
        ("\n\n", "", True),
    ],
)
def test_lines(got: str, want: str, ok: bool) -> None:
    assert (compare.lines(got, want) is None) is ok


def test_lines_message_names_the_line() -> None:
    assert compare.lines("a\nb\nc\n", "a\nx\nc\n") == "line 2: got 'b', expected 'x'"
    assert compare.lines("a\n", "a\nb\n") == "got 1 lines, expected 2"


@pytest.mark.parametrize(
    ("got", "want", "ok"),
    [("5\n", "5\n", True), ("5", "5\n", False), ("5 \n", "5\n", False),
     ("a\r\nb", "a\nb", False), ("", "", True)],
)
def test_exact(got: str, want: str, ok: bool) -> None:
    assert (compare.exact(got, want) is None) is ok


@pytest.mark.parametrize(
    ("got", "want", "ok"),
    [("1   2\n\n3", "1 2 3", True), ("1\r\n2\r\n", "1 2", True), ("1 2", "1 2 3", False),
     ("1 2 4", "1 2 3", False), ("", "  \n", True)],
)
def test_tokens(got: str, want: str, ok: bool) -> None:
    assert (compare.tokens(got, want) is None) is ok


@pytest.mark.parametrize(
    ("got", "want", "abs_tol", "rel_tol", "ok"),
    [
        ("0.1000000001", "0.1", 1e-6, 1e-6, True),  # a 1e-10 difference
        ("1.000000001\n", "1", 1e-6, 0.0, True),  # 1e-9
        ("1.000000001", "1", 1e-12, 0.0, False),  # 1e-9 against a 1e-12 tolerance
        ("1000000.5", "1000000", 0.0, 1e-6, True),  # relative
        ("1000002", "1000000", 0.0, 1e-6, False),
        ("1e-9", "0", 1e-9, 0.0, True),
        ("nan", "nan", 1e-6, 1e-6, True),
        ("inf", "inf", 1e-6, 1e-6, True),
        ("1e308", "inf", 1e-6, 1e-6, False),
        ("abc", "1.0", 1.0, 1.0, False),  # a word where a number is expected
        ("YES 1.0", "YES 1.0000001", 1e-6, 0.0, True),  # words compared exactly
        ("NO 1.0", "YES 1.0", 1e-6, 0.0, False),
        ("1 2", "1 2 3", 1e-6, 1e-6, False),
    ],
)
def test_floats(got: str, want: str, abs_tol: float, rel_tol: float, ok: bool) -> None:
    assert (compare.floats(got, want, abs_tol, rel_tol) is None) is ok


def test_compare_dispatch_and_default() -> None:
    assert compare.compare(None, "1 \n", "1") is None  # lines by default
    assert compare.compare(Compare(mode=CompareMode.EXACT), "1 \n", "1") is not None
    with pytest.raises(ValueError, match="checker"):
        compare.compare(Compare(mode=CompareMode.CHECKER), "1", "1")


# ----------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("reason", "verdict"),
    [
        (Reason.OK, None),
        (Reason.TIME_LIMIT, Verdict.TIME_LIMIT),
        (Reason.WALL_LIMIT, Verdict.TIME_LIMIT),
        (Reason.MEMORY_LIMIT, Verdict.MEMORY_LIMIT),
        (Reason.OUTPUT_LIMIT, Verdict.OUTPUT_LIMIT),
        (Reason.NONZERO_EXIT, Verdict.RUNTIME_ERROR),
        (Reason.SIGNALED, Verdict.RUNTIME_ERROR),
        (Reason.PIDS_LIMIT, Verdict.RUNTIME_ERROR),
        (Reason.INTERNAL_ERROR, Verdict.INTERNAL_ERROR),
    ],
)
def test_run_verdict(reason: Reason, verdict: Verdict | None) -> None:
    assert verdicts.run_verdict(StepReport(reason=reason)) == verdict


def test_run_message() -> None:
    assert verdicts.run_message(StepReport(exit_code=3, reason=Reason.NONZERO_EXIT)) == (
        "exit code 3")
    assert verdicts.run_message(StepReport(signal=11, reason=Reason.SIGNALED)) == (
        "killed by signal 11")


def _cases(*pairs: tuple[Verdict, int]) -> list[CaseResult]:
    return [CaseResult(verdict=v, weight=w, points=scoring.case_points(v, w)) for v, w in pairs]


def _overall(cases: list[CaseResult]) -> tuple[Verdict, float, float]:
    return (verdicts.overall(cases), *scoring.plain_score(cases))


def test_overall_score_and_first_failure() -> None:
    A, W, T = Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.TIME_LIMIT
    assert _overall(_cases((A, 1), (A, 2))) == (A, 3, 3)
    assert _overall(_cases((A, 5), (T, 2), (W, 1))) == (T, 5, 8)
    assert _overall(_cases((A, 5), (W, 2), (Verdict.SKIPPED, 3))) == (W, 5, 10)
    assert _overall(_cases((W, 1), (Verdict.INTERNAL_ERROR, 1)))[0] == Verdict.INTERNAL_ERROR
    assert _overall(_cases((A, 0), (A, 0))) == (A, 0, 0)


# ----------------------------------------------------------------------------- checker


@pytest.mark.parametrize(
    ("code", "verdict"),
    [(0, Verdict.ACCEPTED), (1, Verdict.WRONG_ANSWER), (2, Verdict.WRONG_ANSWER),
     (3, Verdict.INTERNAL_ERROR), (4, Verdict.WRONG_ANSWER), (5, Verdict.INTERNAL_ERROR),
     (42, Verdict.INTERNAL_ERROR)],
)
def test_checker_exit_codes(code: int, verdict: Verdict) -> None:
    reason = Reason.OK if code == 0 else Reason.NONZERO_EXIT
    got, message, _ = checker.decide(StepReport(exit_code=code, reason=reason), " why \n")
    assert got == verdict
    assert ("why" in message) is (code in checker.EXIT_NAMES)


def test_checker_that_crashes_or_times_out_is_internal() -> None:
    for report in (StepReport(signal=11, reason=Reason.SIGNALED),
                   StepReport(exit_code=None, reason=Reason.WALL_LIMIT)):
        assert checker.decide(report, "")[0] == Verdict.INTERNAL_ERROR


# ----------------------------------------------------------------------------- cache


def test_cache_key_covers_every_ingredient() -> None:
    files = [SourceFile("main.c", False, "aa"), SourceFile("lib/x.h", False, "bb")]
    base = cache_key(files, "c", "gcc main.c", ["main"], "gcc 12")
    assert base == cache_key(list(reversed(files)), "c", "gcc main.c", ["main"], "gcc 12")
    changed = [
        cache_key(files[:1], "c", "gcc main.c", ["main"], "gcc 12"),
        cache_key([SourceFile("main.c", True, "aa"), files[1]], "c", "gcc main.c", ["main"],
                  "gcc 12"),
        cache_key([SourceFile("main.c", False, "ab"), files[1]], "c", "gcc main.c", ["main"],
                  "gcc 12"),
        cache_key(files, "cpp", "gcc main.c", ["main"], "gcc 12"),
        cache_key(files, "c", "gcc -O2 main.c", ["main"], "gcc 12"),
        cache_key(files, "c", "gcc main.c", ["main", "x"], "gcc 12"),
        cache_key(files, "c", "gcc main.c", ["main"], "gcc 13"),
    ]
    assert len({base, *changed}) == 1 + len(changed)


def test_index_evicts_least_recently_used() -> None:
    index = Index(capacity=100)
    assert index.add(Entry("a", {}, 40)) == []
    assert index.add(Entry("b", {}, 40)) == []
    assert index.get("a") is not None  # a is now the most recently used
    assert index.add(Entry("c", {}, 40)) == ["b"]
    assert list(index.entries) == ["a", "c"]
    assert index.add(Entry("huge", {}, 101)) == ["huge"]  # alone too large: not kept
    assert "huge" not in index.entries and index.size == 80
    index.drop("a")
    assert index.get("a") is None


# ----------------------------------------------------------------------------- presets


def test_presets_fill_absolute_tool_paths() -> None:
    host = HostLanguage(PRESETS["cpp"], "g++ 12", {"g++": "/usr/bin/g++-12"})
    assert host.compile_command.startswith("/usr/bin/g++-12 ")
    assert "{" not in host.compile_command and host.run_command == "./main"
    java = HostLanguage(PRESETS["java"], "javac 17", {"javac": "/j/javac", "java": "/j/java"})
    assert java.run_command.startswith("/j/java ") and java.preset.outputs == ("*.class",)
    assert {"c", "cpp", "python3", "java", "go", "rust"} <= set(PRESETS)


def test_version_line() -> None:
    assert version_line("\n  gcc (Debian) 12.2.0\nCopyright\n") == "gcc (Debian) 12.2.0"
    assert version_line("") == ""
    assert len(version_line("x" * 1000)) == 200


# ----------------------------------------------------------------------------- validation


def _task(**execute: object) -> Task:
    return Task(compile=Compile(language="c"), execute=Execute(**execute))  # type: ignore[arg-type]


POLICY = JudicatorSettings()


def test_valid_judged_task() -> None:
    task = _task(cases=[Case("1 2", "3", weight=2, timeout=1, memory_limit=1 << 26)],
                 compare=Compare(mode=CompareMode.FLOAT, abs_tol=1e-9, rel_tol=0))
    check_judging(task, POLICY)
    assert judged(task) and not judged(Task())


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (Task(compile=Compile(language="cobol")), "no language preset"),
        (Task(compile=Compile(language="c", command="gcc x.c")), "leave them empty"),
        (_task(cases=[Case()] * 1001), "more than the limit"),
        (_task(cases=[Case()], input="1"), "not both"),
        (_task(cases=[Case(weight=-1)]), "weight"),
        (_task(cases=[Case(timeout=0)]), "case 1 timeout"),
        (_task(cases=[Case(memory_limit=1 << 60)]), "memory_limit"),
        (_task(compare=Compare(mode=CompareMode.FLOAT, abs_tol=float("nan"))), "abs_tol"),
        (_task(compare=Compare(mode=CompareMode.CHECKER)), "needs a checker"),
        (_task(compare=Compare(mode=CompareMode.CHECKER, checker=Checker("perl", "x"))),
         "checker language"),
        (_task(compare=Compare(mode=CompareMode.LINES, checker=Checker("c", "x"))),
         "only with compare mode checker"),
    ],
)
def test_invalid_judged_tasks(task: Task, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_judging(task, POLICY)


# ----------------------------------------------------------------------------- case limits


def test_case_limits_override_and_are_clamped() -> None:
    settings = ExecutorSettings(max_cpu_limit=10, max_memory_limit=1 << 30)
    task = Task(execute=Execute(timeout=5, cpu_limit=2, memory_limit=1 << 26))
    plain = case_limits(task, Case(), settings)
    assert (plain.wall_time, plain.cpu_time, plain.memory) == (5.0, 2, 1 << 26)
    own = case_limits(task, Case(timeout=1, cpu_limit=99, memory_limit=1 << 40,
                                 output_limit=4096), settings)
    assert (own.wall_time, own.cpu_time, own.memory, own.output) == (1.0, 10, 1 << 30, 4096)


def test_release_value() -> None:
    text = 'IMPLEMENTOR="Debian"\nJAVA_VERSION="17.0.15"\nJAVA_VERSION_DATE="2025-04-15"\n'
    assert release_value(text, "JAVA_VERSION") == "17.0.15"
    assert release_value(text, "MISSING") == "" and release_value("", "JAVA_VERSION") == ""
