"""The Store contract for judging, on every backend: judged tasks and judgements round-trip,
assignment filters by the executor's languages, executors' languages are listed."""

from __future__ import annotations

from khala.model import (
    Case,
    CaseResult,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    Judgement,
    Language,
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
