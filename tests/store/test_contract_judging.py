"""The Store contract for judging, on every backend: judged tasks and judgements round-trip,
assignment filters by the executor's languages, executors' languages are listed."""

from __future__ import annotations

from dataclasses import replace

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
    Status,
    Task,
    Verdict,
    new_id,
)
from khala.store import Store
from tests.store.test_contract import at, opener, store  # noqa: F401 - fixtures

__all__ = ["opener", "store"]


def judged_task(seconds: float, language: str = "", checker: str = "") -> Task:
    compare = None
    if checker:
        compare = Compare(mode=CompareMode.CHECKER, checker=Checker(checker, "int main(){}"))
    return Task(
        id=new_id(), user=1, add_time=at(seconds),
        compile=Compile(source=b"PK", language=language),
        execute=Execute(cases=[Case("1 2", "3", weight=2, timeout=1), Case("2 2", "4")],
                        compare=compare, stop_on_failure=True),
    )


def test_judged_task_and_judgement_round_trip(store: Store) -> None:  # noqa: F811
    task = judged_task(0, "cpp", "python3")
    task.execute.compare.abs_tol = 1e-9  # type: ignore[union-attr]
    store.add(task)
    assert store.get(task.id) == task
    [taken] = store.assign("e1", 1, at(1), frozenset({"cpp", "python3"}))
    judgement = Judgement(
        verdict=Verdict.WRONG_ANSWER, score=2, max_score=3, language="g++ 12", compiles=1,
        cases=[CaseResult(Verdict.ACCEPTED, 2, 0.01, 0.02, 1024, 0, None, "3\n", "", ""),
               CaseResult(Verdict.WRONG_ANSWER, 1, message="line 1: got '5', expected '4'")])
    assert store.finish(taken.id, "e1", Status.SUCCESS, Result(judgement=judgement), at(2))
    got = store.get(task.id)
    assert got is not None and got.result is not None
    assert got.result.judgement == judgement


def test_assign_only_tasks_whose_languages_the_executor_has(store: Store) -> None:  # noqa: F811
    plain, c, py, c_checked_by_py = (judged_task(1), judged_task(2, "c"), judged_task(3, "python3"),
                                     judged_task(4, "c", "python3"))
    seed = Task(id=new_id(), user=1, add_time=at(0), compile=Compile(command="true"),
                execute=Execute(command="true"))
    for task in (seed, plain, c, py, c_checked_by_py):
        store.add(task)
    none = store.assign("old", 10, at(5), frozenset())
    assert {t.id for t in none} == {seed.id, plain.id}
    only_c = store.assign("c-only", 10, at(6), frozenset({"c"}))
    assert {t.id for t in only_c} == {c.id}
    both = store.assign("all", 10, at(7), frozenset({"c", "python3", "java"}))
    assert {t.id for t in both} == {py.id, c_checked_by_py.id}


def test_executors_languages_listed(store: Store) -> None:  # noqa: F811
    store.touch_executor("e1", at(10), [Language("c", "gcc 12"), Language("python3", "3.11")])
    store.touch_executor("e2", at(10), [Language("c", "gcc 13")])
    store.touch_executor("e3", at(10))  # an old executor: no languages
    store.touch_executor("gone", at(0), [Language("java", "17")])
    assert store.languages(at(5)) == [Language("c", "gcc 12 | gcc 13", 2, ["e1", "e2"]),
                                      Language("python3", "3.11", 1, ["e1"])]
    store.touch_executor("e1", at(11), [])  # it lost its languages
    assert store.languages(at(5)) == [Language("c", "gcc 13", 1, ["e2"])]
    store.touch_executor("e2", at(12))  # a report without languages keeps them
    assert store.languages(at(5)) == [Language("c", "gcc 13", 1, ["e2"])]


def test_languages_listed_per_image(store: Store) -> None:  # noqa: F811
    """A language offered on the host and in an image is two entries; the image's source
    file and time factor are kept."""
    kotlin = Language("kotlin", "kotlinc 1.3", image="judge:2", source="main.kt",
                      time_factor=2.0)
    store.touch_executor("e1", at(10), [Language("c", "gcc 12"),
                                        Language("c", "gcc 12.2", image="judge:2",
                                                 source="main.c"), kotlin])
    store.touch_executor("e2", at(10), [Language("kotlin", "kotlinc 1.3", image="judge:2",
                                                 source="main.kt", time_factor=2.0)])
    assert store.languages(at(5)) == [
        Language("c", "gcc 12", 1, ["e1"]),
        Language("c", "gcc 12.2", 1, ["e1"], image="judge:2", source="main.c"),
        Language("kotlin", "kotlinc 1.3", 2, ["e1", "e2"], image="judge:2", source="main.kt",
                 time_factor=2.0)]


def rich_task(seconds: float) -> Task:
    """Groups, an interactor, files out: every judging field this version added."""
    return Task(
        id=new_id(), user=1, add_time=at(seconds),
        compile=Compile(source=b"PK", language="cpp"),
        execute=Execute(
            cases=[Case("1", "2", group="a"), Case("3", "4", weight=2, group="b")],
            groups=[Group("a", 40.5, GroupPolicy.SUM), Group("b", 59.5, GroupPolicy.MIN, ["a"])],
            skip_failed_groups=True, outputs=["out/x.bin", "y.txt"],
            interactor=Interactor("python3", "import sys", timeout=3, cpu_limit=2,
                                  memory_limit=1 << 26)),
    )


def test_groups_interactor_and_files_out_round_trip(store: Store) -> None:  # noqa: F811
    task = rich_task(0)
    store.add(task)
    assert store.get(task.id) == task
    [taken] = store.assign("e1", 1, at(1), frozenset({"cpp", "python3"}))
    binary = bytes(range(256))
    judgement = Judgement(
        verdict=Verdict.PARTIAL, score=40.5 + 29.75, max_score=100.0, cases=[
            CaseResult(Verdict.ACCEPTED, 1, points=1.0,
                       files=[OutputFile("out/x.bin", binary, 256), OutputFile("y.txt",
                                                                               error="missing")]),
            CaseResult(Verdict.PARTIAL, 2, points=1.0, message="points 0.5")],
        groups=[GroupResult("a", Verdict.ACCEPTED, 40.5, 40.5, False, [0]),
                GroupResult("b", Verdict.PARTIAL, 29.75, 59.5, False, [1])])
    result = Result(judgement=judgement, files=[OutputFile("z", b"\x00\xff", 2)])
    assert store.finish(taken.id, "e1", Status.SUCCESS, result, at(2))
    got = store.get(task.id)
    assert got is not None and got.result == result


def test_assign_needs_the_interactors_language(store: Store) -> None:  # noqa: F811
    task = rich_task(0)  # cpp program, python3 interactor
    store.add(task)
    assert store.assign("cpp-only", 10, at(5), frozenset({"cpp"})) == []
    assert [t.id for t in store.assign("both", 10, at(6), frozenset({"cpp", "python3"}))] == [
        task.id]


def test_a_lean_get_leaves_out_the_case_texts_only(store: Store) -> None:  # noqa: F811
    task = judged_task(0, "cpp", "python3")
    task.execute.cases[1].memory_limit = 1 << 26
    store.add(task)
    lean = store.get(task.id, lean=True)
    assert lean is not None
    for got, case in zip(lean.execute.cases, task.execute.cases, strict=True):
        assert (got.input, got.standard) == ("", "")
        assert replace(got, input=case.input, standard=case.standard) == case
    lean.execute.cases = task.execute.cases
    assert lean == task


def test_a_large_task_round_trips_through_its_life(store: Store) -> None:  # noqa: F811
    """A task whose texts and zips are large (a store may keep them apart from the task's
    record): whole when read, lean without its cases' texts, assigned whole, removed."""
    big = "7 " * 60_000
    task = judged_task(0, "c")
    task.compile.source = b"PK" + bytes(range(256)) * 100
    task.execute.data = b"PK-data" * 3000
    task.execute.cases = [Case(big, big[::-1], weight=3), Case("1 1", "2", timeout=1.5)]
    store.add(task)
    assert store.get(task.id) == task
    lean = store.get(task.id, lean=True)
    assert lean is not None
    assert lean.execute.cases == [replace(c, input="", standard="") for c in task.execute.cases]
    assert (lean.compile.source, lean.execute.data) == (task.compile.source, task.execute.data)
    [taken] = store.assign("ex", 1, at(1), frozenset({"c"}))
    assert (taken.compile, taken.execute) == (task.compile, task.execute)
    assert store.finish(task.id, "ex", Status.SUCCESS, Result(execute_output=b"x" * 50_000),
                        at(2))
    done = store.get(task.id)
    assert done is not None and done.execute == task.execute and done.done
    assert store.remove(task.id) and store.get(task.id) is None
