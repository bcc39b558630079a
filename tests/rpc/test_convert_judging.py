"""Judging fields through the Thrift conversion (khala/rpc/convert/): round trips, new ids
only, and clear refusals."""

from __future__ import annotations

import pytest

from khala.errors import InvalidInput
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
    GroupResult,
    Interactor,
    Judgement,
    Language,
    OutputFile,
    Result,
    Task,
    Verdict,
)
from khala.rpc import convert
from khala.rpc import judicator_thrift as T


def test_judged_task_round_trips() -> None:
    task = Task(
        id="6b02ee5afcee7f1d7be705b1", user=3,
        compile=Compile(source=b"PK", timeout=10, language="cpp"),
        execute=Execute(timeout=2, cases=[Case("1 2\n", "3\n", 5, 1, 2, 1 << 26, 1 << 20),
                                          Case("", "", 0)],
                        compare=Compare(CompareMode.CHECKER, 1e-9, 0.0, Checker("python3", "x")),
                        stop_on_failure=True),
    )
    assert convert.task_from_thrift(convert.task_to_thrift(task)) == task


def test_a_lean_task_leaves_out_the_case_texts_and_the_standard_outputs_only() -> None:
    judgement = Judgement(Verdict.ACCEPTED, 1, 1, [
        CaseResult(Verdict.ACCEPTED, 1, 0.5, 0.6, 1 << 20, 0, None, "3\n", "", "")])
    result = Result(compile_output=b"built", compile_error=b"warning", execute_output=b"3\n" * 9,
                    execute_error=b"[khala] note", judgement=judgement)
    task = Task(id="6b02ee5afcee7f1d7be705b1", user=3, done=True, result=result,
                compile=Compile(source=b"PK", language="c"),
                execute=Execute(cases=[Case("1 2\n", "3\n", 5, 1, 2, 1 << 26, 1 << 20)]))
    lean = convert.task_from_thrift(convert.task_to_thrift(task, lean=True))
    assert lean.execute.cases == [Case("", "", 5, 1, 2, 1 << 26, 1 << 20)]
    assert lean.result == Result(compile_error=b"warning", execute_error=b"[khala] note",
                                 judgement=judgement)
    lean.execute.cases, lean.result = task.execute.cases, result
    assert lean == task


def test_plain_task_sends_no_judging_fields() -> None:
    wire = convert.task_to_thrift(Task(compile=Compile(command="true"), execute=Execute()))
    assert wire.compile.language is None
    assert (wire.execute.cases, wire.execute.compare, wire.execute.stop_on_failure) == (
        None, None, None)


def test_judgement_round_trips() -> None:
    judgement = Judgement(Verdict.RUNTIME_ERROR, 1, 2, [
        CaseResult(Verdict.ACCEPTED, 1, 0.5, 0.6, 1 << 20, 0, None, "ok\n", "", ""),
        CaseResult(Verdict.RUNTIME_ERROR, 1, signal=11, message="killed by signal 11"),
    ], "gcc 12", 1, True, "")
    result = Result(execute_output=b"ok\n", judgement=judgement)
    assert convert.result_from_thrift(convert.result_to_thrift(result)) == result


def test_unknown_mode_is_invalid_input_and_unknown_verdict_reads_internal_error() -> None:
    wire = convert.task_to_thrift(Task(compile=Compile(), execute=Execute()))
    wire.execute.compare = T.Compare(mode="fuzzy")
    with pytest.raises(InvalidInput, match="fuzzy"):
        convert.task_from_thrift(wire)
    got = convert.judgement_from_thrift(T.Judgement(verdict="great", cases=[]))
    assert got is not None and got.verdict == Verdict.INTERNAL_ERROR


def test_language_round_trip_and_field_ids() -> None:
    lang = Language("c", "gcc 12", 2)
    assert convert.language_from_thrift(convert.language_to_thrift(lang)) == lang
    # New capabilities only as new ids (docs/rpc.md): the original ids keep their names.
    assert T.Compile.thrift_spec[5][1] == "language"
    assert [T.Execute.thrift_spec[i][1] for i in (10, 11, 12)] == [
        "cases", "compare", "stop_on_failure"]
    assert T.Result.thrift_spec[7][1] == "judgement"
    assert [T.Task.thrift_spec[i][1] for i in range(1, 11)] == [
        "id", "user", "compile", "execute", "add_time", "done", "status", "executor",
        "report_time", "result"]


def test_groups_interactor_outputs_round_trip() -> None:
    task = Task(
        id="6b02ee5afcee7f1d7be705b1", user=3, compile=Compile(language="cpp"),
        execute=Execute(cases=[Case("1", "2", group="a"), Case("3", "4", group="b")],
                        groups=[Group("a", 10.0), Group("b", 2.5, GroupPolicy.MIN, ["a"])],
                        skip_failed_groups=True, outputs=["x/y.bin"],
                        interactor=Interactor("python3", "print()", 4, 2, 1 << 25)),
    )
    assert convert.task_from_thrift(convert.task_to_thrift(task)) == task


def test_problem_and_judging_extension_ids() -> None:
    """The ids of the groups, interactor, files-out and problem extensions (docs/rpc.md): clear
    of the exact limits (Case 8, 9; Execute 15, 16) and the run's ids (Execute 17-19)."""
    assert T.Case.thrift_spec[10][1] == "group"
    assert [T.Execute.thrift_spec[i][1] for i in (20, 21, 22, 23, 31)] == [
        "groups", "skip_failed_groups", "interactor", "outputs", "problem"]
    assert [T.Result.thrift_spec[i][1] for i in (8, 31)] == ["files", "stored"]
    assert T.Task.thrift_spec[31][1] == "history"
    wire = convert.task_to_thrift(Task(compile=Compile(), execute=Execute()))
    assert (wire.execute.groups, wire.execute.interactor, wire.execute.outputs,
            wire.execute.skip_failed_groups) == (None, None, None, None)


def test_scores_partial_points_groups_and_files_round_trip() -> None:
    judgement = Judgement(Verdict.PARTIAL, 12.345678, 20.5, [
        CaseResult(Verdict.PARTIAL, 2, points=1.5, files=[OutputFile("a", b"\x00\x01", 2)]),
        CaseResult(Verdict.ACCEPTED, 1, points=1.0)], "gcc", 1, False, "",
        groups=[GroupResult("g", Verdict.PARTIAL, 12.345678, 20.5, False, [0, 1])])
    result = Result(judgement=judgement, files=[OutputFile("b", error="missing")])
    wire = convert.result_to_thrift(result)
    assert (wire.judgement.score, wire.judgement.max_score) == (12, 20)  # old readers: i32
    assert convert.result_from_thrift(wire) == result


def test_an_old_judgement_reads_its_integer_scores() -> None:
    got = convert.judgement_from_thrift(T.Judgement(verdict="accepted", score=7, max_score=9,
                                                    cases=[]))
    assert got is not None and (got.score, got.max_score, got.groups) == (7.0, 9.0, [])


def test_unknown_group_policy_is_invalid_input() -> None:
    wire = convert.task_to_thrift(Task(compile=Compile(), execute=Execute()))
    wire.execute.groups = [T.Group(name="g", points=1.0, policy="max")]
    with pytest.raises(InvalidInput, match="max"):
        convert.task_from_thrift(wire)
