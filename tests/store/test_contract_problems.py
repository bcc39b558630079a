"""The problem side of the store (khala/store/problems.py and the task store's problem methods)
on SQLite and on the MongoDB-wire server (FerretDB): versions numbered once, deletion guarded,
the tasks naming a problem, rejudging one with its history, racing writers."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from khala.files.refs import FileRef
from khala.model import (
    REJUDGE_PRIORITY,
    Judged,
    Judgement,
    ProblemRef,
    Result,
    Status,
    Verdict,
)
from khala.problems.model import Rejudge, RejudgeCounts, VerdictChange
from khala.store.base import Store
from tests.store.test_contract import at, make_task, opener, store  # noqa: F401 - fixtures used by name

SPEC = FileRef("b" * 64, 123)


def judged_task(store: Store, version: int, user: int = 1,  # noqa: F811
                verdict: Verdict = Verdict.ACCEPTED, status: Status = Status.SUCCESS) -> str:
    task = make_task(user=user)
    task.compile.language, task.compile.command, task.execute.command = "c", "", ""
    task.execute.problem = ProblemRef(id="sum", version=0, judged=version, spec="c" * 64)
    store.add(task)
    assert store.assign("ex", 1, at(1))[0].id == task.id
    result = Result(judgement=Judgement(verdict=verdict, score=1.0, max_score=2.0))
    assert store.finish(task.id, "ex", status, result, at(2))
    return task.id


def test_problems_and_versions(opener: Callable[[], Store]) -> None:  # noqa: F811
    first = opener()
    assert first.problems.create("sum", "A+B", at(0))
    assert not opener().problems.create("sum", "other", at(0))
    assert first.problems.retitle("sum", "A plus B")
    assert [first.problems.add_version("sum", SPEC, {"cases": i}, at(i)) for i in (1, 2, 3)
            ] == [1, 2, 3]
    assert first.problems.delete_version("sum", 3)
    assert first.problems.add_version("sum", SPEC, {}, at(4)) == 4  # 3 is never given again
    info = first.problems.get("sum")
    assert info is not None and info.title == "A plus B"
    assert [v.version for v in info.versions] == [1, 2, 4]
    assert info.versions[0].summary == {"cases": 1} and info.versions[0].spec == SPEC
    assert first.problems.mark_version("sum", 4, True)
    assert first.problems.version("sum", 4).deleting  # type: ignore[union-attr]
    assert first.problems.get("sum").latest.version == 2  # type: ignore[union-attr]
    assert not first.problems.delete("sum")  # versions left
    for version in (1, 2, 4):
        assert first.problems.delete_version("sum", version)
    assert first.problems.delete("sum")
    assert first.problems.get("sum") is None and first.problems.all() == []


def test_racing_versions_get_distinct_numbers(opener: Callable[[], Store]) -> None:  # noqa: F811
    stores = [opener() for _ in range(4)]
    stores[0].problems.create("race", "", at(0))
    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(
            lambda i: stores[i % 4].problems.add_version("race", SPEC, {}, at(i)), range(16)))
    assert sorted(numbers) == list(range(1, 17))


def test_tasks_naming_a_problem(store: Store) -> None:  # noqa: F811
    assert not store.problem_named("sum")
    first = judged_task(store, 1, user=1, verdict=Verdict.WRONG_ANSWER, status=Status.RUN_FAILED)
    second = judged_task(store, 2, user=2)
    third = judged_task(store, 1, user=2)
    cancelled = make_task()
    cancelled.execute.problem = ProblemRef(id="sum", judged=1)
    store.add(cancelled)
    assert store.cancel(cancelled.id, at(3))
    assert store.problem_named("sum") and store.problem_named("sum", 2)
    assert not store.problem_named("sum", 3) and not store.problem_named("other")
    ordered = sorted([first, second, third])
    assert store.problem_tasks("sum", "", 10) == ordered  # not the cancelled one
    assert store.problem_tasks("sum", ordered[0], 1) == ordered[1:2]
    assert store.problem_tasks("sum", "", 10, version=1) == sorted([first, third])
    assert store.problem_tasks("sum", "", 10, user=2) == sorted([second, third])
    assert store.problem_tasks("sum", "", 10, verdict="wrong_answer") == [first]


def test_a_rejudge_queues_the_task_again_and_keeps_its_judgement(
        opener: Callable[[], Store]) -> None:  # noqa: F811
    backend = opener()
    task_id = judged_task(backend, 1, verdict=Verdict.WRONG_ANSWER, status=Status.RUN_FAILED)
    before = backend.get(task_id)
    assert before is not None and before.result is not None
    entry = Judged(at=at(5), rejudge="r1", version=1, status=before.status,
                   executor=before.executor, report_time=before.report_time,
                   judgement=before.result.judgement)
    target = ProblemRef(id="sum", version=0, judged=2, spec="d" * 64)
    assert backend.rejudge_task(task_id, entry, target, "r1", at(5))
    assert not opener().rejudge_task(task_id, entry, target, "r1", at(6))  # queued already
    after = backend.get(task_id)
    assert after is not None
    assert (after.done, after.status, after.executor, after.result) == (
        False, Status.PENDING, None, None)
    assert after.priority == REJUDGE_PRIORITY and after.execute.problem == target
    assert backend.rejudge_counts("r1") == RejudgeCounts(done=0, queued=1, running=0)
    assert backend.rejudge_changes("r1") == []
    [kept] = backend.history(task_id)
    assert kept.version == 1 and kept.status == Status.RUN_FAILED and kept.rejudge == "r1"
    assert kept.judgement is not None and kept.judgement.verdict == Verdict.WRONG_ANSWER
    # judged again (lower priority than a new task), then counted done
    fresh = make_task(seconds=10)
    backend.add(fresh)
    assert [t.id for t in backend.assign("ex", 2, at(7))] == [fresh.id, task_id]
    assert backend.finish(task_id, "ex", Status.SUCCESS, Result(), at(8))
    assert backend.rejudge_counts("r1") == RejudgeCounts(done=1, queued=0, running=0)
    assert backend.remove(task_id) and backend.history(task_id) == []


def test_rejudge_progress_counts_running_tasks_and_verdict_changes(
        opener: Callable[[], Store]) -> None:  # noqa: F811
    backend = opener()
    moved = judged_task(backend, 1, verdict=Verdict.WRONG_ANSWER, status=Status.RUN_FAILED)
    kept = judged_task(backend, 1, verdict=Verdict.ACCEPTED)
    other = judged_task(backend, 1, verdict=Verdict.WRONG_ANSWER, status=Status.RUN_FAILED)
    target = ProblemRef(id="sum", version=0, judged=2, spec="d" * 64)
    for task_id in (moved, kept, other):
        task = backend.get(task_id)
        assert task is not None and task.result is not None
        rejudge = "r2" if task_id != other else "r3"  # another rejudge's task counts apart
        entry = Judged(at=at(5), rejudge=rejudge, version=1, status=task.status,
                       judgement=task.result.judgement)
        assert backend.rejudge_task(task_id, entry, target, rejudge, at(5))
    assert backend.rejudge_counts("r2") == RejudgeCounts(done=0, queued=2, running=0)
    assert sorted(t.id for t in backend.assign("ex", 3, at(6))) == sorted([moved, kept, other])
    assert backend.rejudge_counts("r2") == RejudgeCounts(done=0, queued=0, running=2)
    assert backend.progress(moved, "ex", Status.RUNNING, at(7)) is not False
    assert backend.rejudge_counts("r2") == RejudgeCounts(done=0, queued=0, running=2)
    for task_id, verdict in ((moved, Verdict.ACCEPTED), (kept, Verdict.ACCEPTED),
                             (other, Verdict.TIME_LIMIT)):
        result = Result(judgement=Judgement(verdict=verdict, score=2.0, max_score=2.0))
        assert backend.finish(task_id, "ex", Status.SUCCESS, result, at(8))
    assert backend.rejudge_counts("r2") == RejudgeCounts(done=2, queued=0, running=0)
    # the unchanged task is no change; the other rejudge's is its own
    assert backend.rejudge_changes("r2") == [VerdictChange("wrong_answer", "accepted", 1)]
    assert opener().rejudge_changes("r3") == [VerdictChange("wrong_answer", "time_limit", 1)]
    assert backend.rejudge_changes("nothing") == []


def test_rejudges_are_saved(store: Store) -> None:  # noqa: F811
    rejudge = Rejudge(problem="sum", version=2, from_version=1, user=7, verdict="accepted",
                      id="r" * 24, created=at(1))
    store.problems.add_rejudge(rejudge)
    rejudge.state, rejudge.cursor, rejudge.total = "running", "f" * 24, 5
    store.problems.save_rejudge(rejudge)
    assert store.problems.rejudge("r" * 24) == rejudge
    assert store.problems.rejudges("sum") == [rejudge] == store.problems.rejudges()
    assert store.problems.rejudges("other") == []


def test_a_rejudge_dispatches_by_the_new_versions_jury_languages(
        store: Store) -> None:  # noqa: F811
    """A rejudge against a version whose checker needs another language goes only to an
    executor that has it (the task's own language is still needed)."""
    task_id = judged_task(store, 1)  # language c, no jury program
    before = store.get(task_id)
    assert before is not None and before.result is not None
    entry = Judged(at=at(5), rejudge="r1", version=1, status=before.status,
                   judgement=before.result.judgement)
    target = ProblemRef(id="sum", version=0, judged=2, spec="d" * 64, checker="python3")
    assert store.rejudge_task(task_id, entry, target, "r1", at(5))
    assert store.assign("c-only", 1, at(6), frozenset({"c"})) == []
    assert store.assign("py-only", 1, at(6), frozenset({"python3"})) == []
    [taken] = store.assign("both", 1, at(6), frozenset({"c", "python3"}))
    assert taken.id == task_id and taken.execute.problem == target
