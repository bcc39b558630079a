"""Results too large for one MongoDB document are cut to fit, and say so (store/mongo_fit.py).

Unit tests of the fitting, and the store's finish on the real FerretDB: there the client
refuses an update statement over 16 MiB (DocumentTooLarge), as a real MongoDB would refuse the
resulting document; before, every report of the executor holding such a result failed.
"""

from __future__ import annotations

from collections.abc import Iterator

import bson
import pytest

from khala.model import (
    CaseResult,
    Judgement,
    OutputFile,
    Reason,
    Result,
    Status,
    StepReport,
    Verdict,
)
from khala.store import open_store
from khala.store.mongo.docs import mongo_set
from khala.store.mongo.fit import (
    CASES_CUT,
    CASES_DROPPED,
    FILE_NOT_KEPT,
    MAX_DOCUMENT_BYTES,
    TEXT_KEPT,
    fit_document,
    fit_result,
    output_budget,
    shares,
)
from khala.store.mongo.store import MongoStore
from tests.store.test_contract import at, make_task

MIB = 1024 * 1024


def test_shares_keep_short_streams_whole_and_split_the_rest() -> None:
    assert shares([10, 20, 30, 40], 100) == [10, 20, 30, 40]
    assert shares([10, 100, 100, 5], 65) == [10, 25, 25, 5]
    assert shares([50, 50, 50, 50], 100) == [25, 25, 25, 25]
    assert shares([7, 9], 0) == [0, 0]
    assert sum(shares([MIB, 3 * MIB, 5, 2 * MIB], 4 * MIB)) <= 4 * MIB


def test_a_result_that_fits_is_unchanged() -> None:
    result = Result(execute_output=b"x" * 100, execute_report=StepReport(exit_code=0))
    assert fit_result(result, 100) is result


def test_a_cut_result_says_which_steps_were_cut() -> None:
    result = Result(compile_output=b"c" * 10, execute_output=b"o" * 100, execute_error=b"e" * 5,
                    compile_report=StepReport(exit_code=0), execute_report=StepReport(exit_code=0))
    fitted = fit_result(result, 55)
    assert fitted.compile_output == b"c" * 10 and fitted.execute_error == b"e" * 5
    assert fitted.execute_output == b"o" * 40
    assert fitted.compile_report == StepReport(exit_code=0)  # not cut: untouched
    assert fitted.execute_report == StepReport(exit_code=0, reason=Reason.OUTPUT_LIMIT)


def test_the_budget_leaves_room_for_the_task_and_the_judgement() -> None:
    assert output_budget(0, 0) < MAX_DOCUMENT_BYTES
    assert output_budget(15 * MIB, MIB) == 0
    assert output_budget(MIB, 1000) == output_budget(MIB + 1000, 0)


@pytest.fixture
def store(mongo_url: str) -> Iterator[MongoStore]:
    opened = open_store(mongo_url)
    assert isinstance(opened, MongoStore)
    yield opened
    opened.close()


@pytest.mark.integration
def test_finish_of_a_result_over_the_document_limit_is_recorded_cut(store: MongoStore) -> None:
    task = make_task()
    task.compile.command = "s" * MIB  # in the task's document (a large source is apart)
    store.add(task)
    assert [t.id for t in store.assign("ex", 1, at(1))] == [task.id]
    big = 5 * MIB + 512 * 1024  # three of these are over 16 MiB
    result = Result(compile_output=b"a" * 10, compile_error=b"b" * big,
                    execute_output=b"c" * big, execute_error=b"d" * big,
                    compile_report=StepReport(exit_code=0), execute_report=StepReport(exit_code=0))
    assert store.finish(task.id, "ex", Status.SUCCESS, result, at(2))
    got = store.get(task.id)
    assert got is not None and got.done and got.status == Status.SUCCESS and got.result
    kept = got.result
    assert kept.compile_output == b"a" * 10
    total = sum(len(s) for s in (kept.compile_error, kept.execute_output, kept.execute_error))
    assert 3 * MIB < total <= MAX_DOCUMENT_BYTES - MIB  # the task's 1 MiB command fits beside
    assert kept.execute_output == b"c" * len(kept.execute_output)
    assert kept.compile_report and kept.compile_report.reason == Reason.OUTPUT_LIMIT
    assert kept.execute_report and kept.execute_report.reason == Reason.OUTPUT_LIMIT


def encoded(result: Result) -> int:
    return len(bson.encode(mongo_set({"result": result})))


def judged(cases: int, text: int, message: int = 10) -> Result:
    return Result(
        execute_output=b"o" * MIB,
        judgement=Judgement(verdict=Verdict.WRONG_ANSWER, score=1, max_score=cases, cases=[
            CaseResult(verdict=Verdict.WRONG_ANSWER, output="x" * text, error="y" * text,
                       message="m" * message) for _ in range(cases)]),
    )


def test_a_judgement_whose_case_texts_do_not_fit_keeps_its_cases_without_them() -> None:
    result = judged(300, 64 * 1024)  # ≈ 37.5 MiB of case texts
    room = output_budget(MIB, 0)
    fitted = fit_document(result, room, encoded)
    assert encoded(fitted) <= room
    judgement = fitted.judgement
    assert judgement is not None and len(judgement.cases) == 300
    assert {(c.verdict, c.output, c.error, c.message) for c in judgement.cases} == {
        (Verdict.WRONG_ANSWER, "", "", "m" * 10)}
    assert judgement.message == CASES_CUT and judgement.score == 1
    assert len(fitted.execute_output) > MIB // 2  # what room is left goes to the streams


def test_cases_that_do_not_fit_even_without_texts_are_dropped() -> None:
    result = judged(1000, 0, message=TEXT_KEPT * 4)  # ≈ 1 MiB of messages after cutting
    room = output_budget(15 * MIB + MIB // 2, 0)  # beside a task of max_task_size
    fitted = fit_document(result, room, encoded)
    assert encoded(fitted) <= room
    assert fitted.judgement is not None and fitted.judgement.cases == []
    assert fitted.judgement.message == CASES_DROPPED
    assert fitted.judgement.verdict == Verdict.WRONG_ANSWER


@pytest.mark.integration
def test_finish_of_a_judgement_over_the_document_limit_is_recorded(store: MongoStore) -> None:
    task = make_task()
    store.add(task)
    assert [t.id for t in store.assign("ex", 1, at(1))] == [task.id]
    assert store.finish(task.id, "ex", Status.SUCCESS, judged(300, 64 * 1024), at(2))
    got = store.get(task.id)
    assert got is not None and got.done and got.result and got.result.judgement
    assert len(got.result.judgement.cases) == 300
    assert got.result.judgement.message == CASES_CUT
    assert got.result.execute_output == b"o" * MIB


def test_files_out_that_do_not_fit_are_listed_without_their_content() -> None:
    big = b"\x00\xff" * (3 * MIB)  # 6 MiB each
    result = Result(execute_output=b"o" * MIB,
                    files=[OutputFile("a.bin", big, len(big)), OutputFile("b", error="missing")],
                    judgement=Judgement(verdict=Verdict.ACCEPTED, cases=[
                        CaseResult(verdict=Verdict.ACCEPTED,
                                   files=[OutputFile("c.bin", big, len(big))])
                        for _ in range(2)]))
    room = output_budget(MIB, 0)
    fitted = fit_document(result, room, encoded)
    assert encoded(fitted) <= room
    assert [(f.name, f.content, f.size, f.error) for f in fitted.files] == [
        ("a.bin", b"", len(big), FILE_NOT_KEPT), ("b", b"", 0, "missing")]
    assert fitted.judgement is not None and len(fitted.judgement.cases) == 2
    for case in fitted.judgement.cases:
        [kept] = case.files
        assert (kept.content, kept.size, kept.error) == (b"", len(big), FILE_NOT_KEPT)
