"""FinishedTasks (khala/gateway/finished.py), pure logic on a fake clock: what is kept, for
how long, within what memory; rendered answers made once per kept task."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from khala.errors import NotFound
from khala.gateway.finished import FinishedTasks, task_bytes
from khala.model import Result, Status, Task

ID = "a" * 24


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Judicator:
    """Counts fetches; answers whatever task it holds."""

    def __init__(self, task: Task | None) -> None:
        self.task = task
        self.fetches = 0

    def get(self, ref: str) -> Task:
        self.fetches += 1
        if self.task is None or ref not in (self.task.id, self.task.key):
            raise NotFound(f"no task {ref}")
        return self.task


def finished(task_id: str = ID, status: Status = Status.SUCCESS, output: bytes = b"",
             executor: str | None = "ex", result: bool = True) -> Task:
    return Task(id=task_id, user=3, done=True, status=status, executor=executor,
                result=Result(execute_output=output) if result else None)


def make(seconds: float = 1.0, budget: int = 1 << 20) -> tuple[FinishedTasks, Clock]:
    clock = Clock()
    return FinishedTasks(seconds, budget, clock=clock), clock


def test_a_final_task_is_fetched_once_while_fresh_then_again() -> None:
    cache, clock = make(seconds=1.0)
    judicator = Judicator(finished())
    first = cache.read(ID, judicator.get)
    clock.now = 100.99
    assert cache.read(ID, judicator.get) is first and judicator.fetches == 1
    clock.now = 101.0  # its second has passed (counted from before the fetch)
    cache.read(ID, judicator.get)
    assert judicator.fetches == 2


@pytest.mark.parametrize("task", [
    Task(id=ID, done=False, status=Status.RUNNING, executor="ex"),
    Task(id=ID, done=False, status=Status.PENDING),
    finished(status=Status.CANCELLED, result=False),  # its run's output may still come
], ids=["running", "pending", "cancelled-run-without-output"])
def test_a_task_that_may_still_change_is_never_kept(task: Task) -> None:
    cache, _ = make(seconds=60.0)
    judicator = Judicator(task)
    for _ in range(3):
        assert cache.read(ID, judicator.get) is task
    assert judicator.fetches == 3 and len(cache) == 0


@pytest.mark.parametrize("task", [
    finished(status=Status.CANCELLED, result=True),
    finished(status=Status.CANCELLED, executor=None, result=False),  # never ran
    finished(status=Status.COMPILE_FAILED),
], ids=["cancelled-with-output", "cancelled-queued", "compile-failed"])
def test_other_done_tasks_are_kept(task: Task) -> None:
    cache, _ = make()
    judicator = Judicator(task)
    cache.read(ID, judicator.get)
    cache.read(ID, judicator.get)
    assert judicator.fetches == 1


def test_keys_and_refusals_are_not_kept() -> None:
    cache, _ = make(seconds=60.0)
    task = finished()
    task.key = "my-key"
    judicator = Judicator(task)
    cache.read("my-key", judicator.get)
    cache.read("my-key", judicator.get)  # a key may name another task after a delete
    assert judicator.fetches == 2
    for _ in range(2):
        with pytest.raises(NotFound):
            cache.read("b" * 24, judicator.get)
    assert judicator.fetches == 4 and len(cache) == 0


def test_off_when_seconds_or_budget_is_zero() -> None:
    for seconds, budget in ((0.0, 1 << 20), (1.0, 0)):
        cache = FinishedTasks(seconds, budget)
        judicator = Judicator(finished())
        cache.read(ID, judicator.get)
        cache.read(ID, judicator.get)
        assert judicator.fetches == 2 and not cache.enabled


def test_the_memory_bound_drops_the_least_recently_read() -> None:
    size = task_bytes(finished(output=b"x" * 1000))
    cache, _ = make(seconds=60.0, budget=size * 4)
    ids = [f"{i:024x}" for i in range(5)]
    judicators = {i: Judicator(finished(i, output=b"x" * 1000)) for i in ids}
    for i in ids[:4]:
        cache.read(i, judicators[i].get)
    cache.read(ids[0], judicators[ids[0]].get)  # read again: the most recent now
    cache.read(ids[4], judicators[ids[4]].get)  # over the budget: ids[1] goes
    assert len(cache) == 4
    assert cache.lookup(ids[1]) is None and cache.lookup(ids[0]) is not None
    big = finished("c" * 24, output=b"x" * size * 2)  # over a quarter of the budget
    cache.read(big.id, Judicator(big).get)
    assert cache.lookup(big.id) is None and len(cache) == 4


def test_forget_all() -> None:
    cache, _ = make(seconds=60.0)
    judicator = Judicator(finished())
    cache.read(ID, judicator.get)
    cache.forget_all()
    cache.read(ID, judicator.get)
    assert judicator.fetches == 2


def test_a_fetch_under_way_when_a_delete_is_answered_is_not_kept() -> None:
    cache, _ = make(seconds=60.0)
    task = finished()

    def fetch_while_deleting(ref: str) -> Task:
        cache.forget_all()  # the DELETE answered while this read waits for the judicator
        return task

    assert cache.read(ID, fetch_while_deleting) is task
    assert len(cache) == 0
    judicator = Judicator(task)
    cache.read(ID, judicator.get)
    cache.read(ID, judicator.get)  # fetched after the delete: kept as usual
    assert judicator.fetches == 1


def counted(body: bytes) -> tuple[Callable[[], bytes], list[int]]:
    calls = [0]

    def render() -> bytes:
        calls[0] += 1
        return body

    return render, calls


def test_answers_are_rendered_once_per_variant_while_kept() -> None:
    cache, clock = make(seconds=1.0)
    task = cache.read(ID, Judicator(finished()).get)
    render, calls = counted(b'{"a": 1}')
    assert cache.answer(task, "short", render) == b'{"a": 1}'
    assert cache.answer(task, "short", render) == b'{"a": 1}' and calls == [1]
    cache.answer(task, "full", render)
    assert calls == [2]
    clock.now = 101.0  # expired: the next read fetches a new task, rendered anew
    again = cache.read(ID, Judicator(finished()).get)
    cache.answer(again, "short", render)
    assert calls == [3]


def test_a_task_not_kept_is_rendered_every_time() -> None:
    cache, _ = make(seconds=60.0)
    running = cache.read(ID, Judicator(Task(id=ID, status=Status.RUNNING)).get)
    render, calls = counted(b"{}")
    cache.answer(running, "short", render)
    cache.answer(running, "short", render)
    assert calls == [2]
