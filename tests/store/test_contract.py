"""The Store contract: one suite, run against every backend (SQLite file, MongoDB via FerretDB)."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from khala.model import (
    Compile,
    Execute,
    Result,
    SearchQuery,
    Status,
    StepReport,
    Task,
    format_time,
    new_id,
)
from khala.rules import lifecycle
from khala.store import Store, open_store

BASE = dt.datetime(2024, 5, 1, 12, 0, 0)
ZIP_BYTES = bytes(range(256)) * 40 + b"PK\x03\x04\x00\x00"


def at(seconds: float) -> str:
    return format_time(BASE + dt.timedelta(seconds=seconds))


# The MongoDB variant needs the FerretDB server: an integration test (tests/README.md).
@pytest.fixture(params=["sqlite", pytest.param("mongodb", marks=pytest.mark.integration)])
def opener(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[[], Store]]:
    """Opens (another) store on the same data, as a second judicator would."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/khala.db"
    else:
        url = request.getfixturevalue("mongo_url")
    opened: list[Store] = []

    def open_one() -> Store:  # MongoDB: large bodies apart (the default's one document is
        opened.append(open_store(url, bodies_apart=True))  # what every other suite writes)
        return opened[-1]

    yield open_one
    for one in opened:
        one.close()


@pytest.fixture
def store(opener: Callable[[], Store]) -> Store:
    return opener()


def make_task(seconds: float = 0, user: int = 1, **changes: object) -> Task:
    task = Task(
        id=new_id(),
        user=user,
        compile=Compile(source=b"", command="true", timeout=1),
        execute=Execute(input="", command="echo hi", timeout=1, standard="hi\n"),
        add_time=at(seconds),
    )
    for key, value in changes.items():
        setattr(task, key, value)
    return task


def add_tasks(store: Store, count: int, **changes: Any) -> list[Task]:
    tasks = [make_task(i, **changes) for i in range(count)]
    for task in tasks:
        store.add(task)
    return tasks


def full_result() -> Result:
    return Result(
        compile_output="编译 ok ✓".encode(),
        compile_error=b"",
        execute_output="héllo\n".encode() * 100 + b"\xff\xfe not UTF-8",
        execute_error=b"warn\x00ing",
        compile_report=StepReport(exit_code=0, time=0.25, wall_time=0.5, memory=1 << 20),
        execute_report=StepReport(
            exit_code=None, signal=9, core_dump=True, time=1.5, wall_time=2.0,
            memory=5 << 20, reason="memory_limit",
        ),
    )


# ----------------------------------------------------------------------------- add / get


def test_add_get_round_trip_keeps_every_field(store: Store) -> None:
    task = make_task(
        user=2147483647,
        compile=Compile(source=ZIP_BYTES, command="gcc — «main».c", timeout=7,
                        memory_limit=256 << 20),
        execute=Execute(input="ввод\n\x01", data=b"\x00PK\xff" * 1000, command="./a.out 😀",
                        timeout=3, standard="結果\n", memory_limit=64 << 20, cpu_limit=2,
                        pids_limit=32, output_limit=1 << 16, disk_limit=3 << 20),
    )
    assert store.add(task) == task.id
    assert store.get(task.id) == task


def test_round_trip_of_a_done_task_with_result(store: Store) -> None:
    task = make_task(done=True, status=Status.RUN_FAILED, executor="ex-1", report_time=at(9),
                     result=full_result())
    store.add(task)
    got = store.get(task.id)
    assert got == task
    assert got is not None and got.result is not None
    assert got.result.execute_report == full_result().execute_report


def test_get_unknown_or_malformed_id(store: Store) -> None:
    store.add(make_task())
    assert store.get(new_id()) is None
    assert store.get("not-an-id") is None


# ----------------------------------------------------------------------------- search


def ids(briefs) -> list[str]:
    return [b.id for b in briefs]


def test_search_orders_and_filters(store: Store) -> None:
    tasks = [make_task(i, user=1 + i % 2) for i in range(6)]
    for task in reversed(tasks):
        store.add(task)
    total, page = store.search(SearchQuery())
    assert total == 6 and ids(page) == [t.id for t in reversed(tasks)]
    total, page = store.search(SearchQuery(old_to_new=True))
    assert total == 6 and ids(page) == [t.id for t in tasks]
    total, page = store.search(SearchQuery(user=2, old_to_new=True))
    assert total == 3 and ids(page) == [tasks[1].id, tasks[3].id, tasks[5].id]
    total, page = store.search(SearchQuery(id=tasks[4].id))
    assert total == 1 and page[0] == tasks[4].brief()
    assert store.search(SearchQuery(id=new_id())) == (0, [])
    assert store.search(SearchQuery(id="bogus")) == (0, [])
    assert store.search(SearchQuery(user=99)) == (0, [])


def test_search_time_window_is_inclusive(store: Store) -> None:
    tasks = add_tasks(store, 6)
    total, page = store.search(SearchQuery(start_time=at(1), end_time=at(3), old_to_new=True))
    assert total == 3 and ids(page) == [t.id for t in tasks[1:4]]
    total, _ = store.search(SearchQuery(start_time=at(4)))
    assert total == 2
    total, _ = store.search(SearchQuery(end_time=at(0)))
    assert total == 1
    total, page = store.search(SearchQuery(user=1, start_time=at(5), end_time=at(5)))
    assert total == 1 and ids(page) == [tasks[5].id]


def test_search_pages(store: Store) -> None:
    tasks = add_tasks(store, 7)
    newest_first = [t.id for t in reversed(tasks)]
    for page_no in range(3):
        total, page = store.search(SearchQuery(limit=3, page=page_no))
        assert total == 7
        assert ids(page) == newest_first[page_no * 3 : page_no * 3 + 3]
    total, page = store.search(SearchQuery(limit=3, page=3))
    assert total == 7 and page == []
    total, page = store.search(SearchQuery(limit=2, page=1, old_to_new=True))
    assert ids(page) == [tasks[2].id, tasks[3].id]


def test_unfiltered_total_follows_adds_and_removals_across_opens(
        store: Store, opener: Callable[[], Store]) -> None:
    """The total of a search without a filter (SQLite keeps it in a counter, not a scan)."""
    tasks = add_tasks(store, 4)
    assert store.cancel(tasks[0].id, at(10))
    assert store.remove(tasks[0].id)
    assert not store.remove(tasks[1].id)  # not done: kept
    assert store.search(SearchQuery())[0] == 3
    again = opener()  # a second judicator on the same data
    again.add(make_task(20))
    assert again.search(SearchQuery())[0] == 4
    assert store.search(SearchQuery(limit=1))[0] == 4


def test_search_ties_on_add_time_break_by_id(store: Store) -> None:
    tasks = [make_task(0) for _ in range(4)]
    for task in tasks:
        store.add(task)
    by_id = sorted(t.id for t in tasks)
    assert ids(store.search(SearchQuery(old_to_new=True))[1]) == by_id
    assert ids(store.search(SearchQuery())[1]) == by_id[::-1]


# ----------------------------------------------------------------------------- cancel


def test_cancel_undone_only(store: Store) -> None:
    pending, running, done = add_tasks(store, 3)
    store.assign("ex", 2, at(10))  # takes pending and running (oldest first)
    assert store.finish(pending.id, "ex", Status.SUCCESS, Result(), at(11))
    assert store.cancel(running.id, at(12))
    got = store.get(running.id)
    assert got is not None
    assert (got.done, got.status, got.executor, got.report_time) == (
        True, Status.CANCELLED, "ex", at(12))  # the executor that held it is kept
    # its stopped run's output comes later: kept once, only from that executor
    kept = Result(execute_output=b"so far")
    assert not store.keep(running.id, "other", kept)
    assert store.keep(running.id, "ex", kept)
    assert not store.keep(running.id, "ex", Result(execute_output=b"again"))
    assert store.get(running.id).result == kept  # type: ignore[union-attr]
    assert not store.keep(pending.id, "ex", kept)  # finished, not cancelled
    assert not store.cancel(running.id, at(13))  # already done
    assert not store.cancel(pending.id, at(13))  # finished
    assert store.get(pending.id).status == Status.SUCCESS  # type: ignore[union-attr]
    assert store.cancel(done.id, at(14))  # still pending
    assert not store.cancel(new_id(), at(14))
    assert not store.cancel("bogus", at(14))
    assert not store.has_queued()
    assert store.assign("ex", 5, at(15)) == []


def test_cancelled_task_cannot_be_finished_or_progressed(store: Store) -> None:
    (task,) = add_tasks(store, 1)
    store.assign("ex", 1, at(1))
    assert store.cancel(task.id, at(2))
    assert not store.progress(task.id, "ex", Status.RUNNING, at(3))
    assert not store.finish(task.id, "ex", Status.SUCCESS, Result(), at(3))
    assert store.held_by("ex") == []


# ----------------------------------------------------------------------------- assign


def test_assign_takes_oldest_queued_first_up_to_count(store: Store) -> None:
    tasks = [make_task(i) for i in range(5)]
    for task in reversed(tasks):
        store.add(task)
    assert store.assign("ex", 0, at(10)) == []
    got = store.assign("ex-a", 2, at(10))
    assert [t.id for t in got] == [tasks[0].id, tasks[1].id]
    for task in got:
        assert (task.executor, task.status, task.report_time, task.done) == (
            "ex-a", Status.COMPILING, at(10), False)
        assert task.compile == tasks[0].compile and task.execute == tasks[0].execute
    stored = store.get(tasks[0].id)
    assert stored is not None and stored.executor == "ex-a"
    rest = store.assign("ex-b", 10, at(11))
    assert [t.id for t in rest] == [t.id for t in tasks[2:]]
    assert store.assign("ex-c", 10, at(12)) == []


def test_assign_only_pending_and_retrying(store: Store) -> None:
    retrying = make_task(0, status=Status.RETRYING)
    pending = make_task(1)
    running_unowned = make_task(2, status=Status.RUNNING)
    done = make_task(3, status=Status.SUCCESS, done=True, result=Result())
    held = make_task(4, executor="other", status=Status.COMPILING)
    for task in (retrying, pending, running_unowned, done, held):
        store.add(task)
    got = store.assign("ex", 10, at(10))
    assert [t.id for t in got] == [retrying.id, pending.id]
    assert all(t.status == Status.COMPILING for t in got)
    assert store.get(held.id).executor == "other"  # type: ignore[union-attr]


def test_has_queued(store: Store) -> None:
    assert not store.has_queued()
    (task,) = add_tasks(store, 1)
    assert store.has_queued()
    store.assign("ex", 1, at(1))
    assert not store.has_queued()
    assert store.requeue(task.id, "ex", at(2))
    assert store.has_queued()


def test_assign_race_gives_each_task_to_exactly_one_executor(
    opener: Callable[[], Store],
) -> None:
    stores = [opener(), opener()]  # two judicators on the same data
    tasks = add_tasks(stores[0], 40)
    threads_count = 8
    taken: dict[str, list[str]] = {f"ex-{i}": [] for i in range(threads_count)}
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def grab(name: str, store: Store) -> None:
        try:
            start.wait(10)
            for _ in range(len(tasks)):
                got = store.assign(name, 3, at(100))
                if not got:
                    return
                taken[name].extend(t.id for t in got)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [
        threading.Thread(target=grab, args=(name, stores[i % 2]))
        for i, name in enumerate(taken)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors, errors
    counts = Counter(task_id for got in taken.values() for task_id in got)
    assert sorted(counts) == sorted(t.id for t in tasks)
    assert set(counts.values()) == {1}
    for name, got in taken.items():
        for task_id in got:
            assert stores[1].get(task_id).executor == name  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- finish, progress


def test_finish_only_by_holder_and_only_once(store: Store) -> None:
    (task,) = add_tasks(store, 1)
    assert not store.finish(task.id, "ex", Status.SUCCESS, Result(), at(1))  # unassigned
    store.assign("ex", 1, at(1))
    assert not store.finish(task.id, "intruder", Status.SUCCESS, Result(), at(2))
    assert store.finish(task.id, "ex", Status.RUN_FAILED, full_result(), at(3))
    assert not store.finish(task.id, "ex", Status.SUCCESS, Result(), at(4))
    got = store.get(task.id)
    assert got is not None
    assert (got.done, got.status, got.executor, got.report_time, got.result) == (
        True, Status.RUN_FAILED, "ex", at(3), full_result())
    assert not store.finish(new_id(), "ex", Status.SUCCESS, Result(), at(5))
    assert not store.finish("bogus", "ex", Status.SUCCESS, Result(), at(5))


def test_late_finish_from_lost_executor_is_refused(store: Store) -> None:
    (task,) = add_tasks(store, 1)
    store.assign("old", 1, at(1))
    assert store.requeue(task.id, "old", at(2))
    (again,) = store.assign("new", 1, at(3))
    assert again.id == task.id and again.executor == "new"
    assert not store.finish(task.id, "old", Status.SUCCESS, Result(execute_output=b"stale"), at(4))
    assert store.finish(task.id, "new", Status.SUCCESS, Result(execute_output=b"fresh"), at(5))
    got = store.get(task.id)
    assert got is not None and got.result == Result(execute_output=b"fresh")


def test_progress_only_by_holder_while_undone(store: Store) -> None:
    (task,) = add_tasks(store, 1)
    assert not store.progress(task.id, "ex", Status.RUNNING, at(1))
    store.assign("ex", 1, at(1))
    assert store.progress(task.id, "ex", Status.RUNNING, at(2))
    got = store.get(task.id)
    assert got is not None and (got.status, got.report_time) == (Status.RUNNING, at(2))
    assert not store.progress(task.id, "other", Status.COMPILING, at(3))
    store.finish(task.id, "ex", Status.SUCCESS, Result(), at(4))
    assert not store.progress(task.id, "ex", Status.RUNNING, at(5))
    assert store.get(task.id).status == Status.SUCCESS  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- held, requeue, stale


def test_held_by_lists_undone_tasks_of_that_executor(store: Store) -> None:
    tasks = add_tasks(store, 4)
    store.assign("a", 2, at(10))
    store.assign("b", 1, at(10))
    store.finish(tasks[1].id, "a", Status.SUCCESS, Result(), at(11))
    assert ids(store.held_by("a")) == [tasks[0].id]
    (brief,) = store.held_by("b")
    assert (brief.id, brief.executor, brief.status, brief.done) == (
        tasks[2].id, "b", Status.COMPILING, False)
    assert store.held_by("nobody") == []


def test_requeue_only_by_holder(store: Store) -> None:
    (task,) = add_tasks(store, 1)
    store.assign("ex", 1, at(1))
    assert not store.requeue(task.id, "other", at(2))
    assert store.requeue(task.id, "ex", at(2))
    got = store.get(task.id)
    assert got is not None
    assert (got.executor, got.status, got.done, got.report_time) == (
        None, Status.RETRYING, False, at(2))
    assert not store.requeue(task.id, "ex", at(3))  # no longer held
    store.assign("ex", 1, at(4))
    store.finish(task.id, "ex", Status.SUCCESS, Result(), at(5))
    assert not store.requeue(task.id, "ex", at(6))  # done never changes


def test_stale_tasks(store: Store) -> None:
    tasks = add_tasks(store, 4)
    store.assign("a", 1, at(10))
    store.assign("b", 1, at(20))
    store.assign("c", 1, at(5))
    store.finish(tasks[2].id, "c", Status.SUCCESS, Result(), at(6))  # done: never stale
    assert ids(store.stale_tasks(at(15))) == [tasks[0].id]
    assert sorted(ids(store.stale_tasks(at(21)))) == sorted([tasks[0].id, tasks[1].id])
    assert store.stale_tasks(at(10)) == []  # strictly older
    store.progress(tasks[0].id, "a", Status.RUNNING, at(30))
    assert ids(store.stale_tasks(at(21))) == [tasks[1].id]


def test_every_change_agrees_with_the_life_cycle(store: Store) -> None:
    """From every combination of done/status/executor, each store method applies exactly when
    lifecycle says so and leaves exactly lifecycle's state behind."""
    states = [
        lifecycle.State(done=done, status=status, executor=executor, report_time=at(1),
                        result=result)
        for done, status, executor, result in itertools.product(
            (False, True), list(Status), (None, "ex", "other"),
            (None, Result(execute_output=b"kept")))
    ]
    # assign (on the empty store): takes exactly the queued ones, oldest first
    tasks = [make_task(100 + n, **vars(state)) for n, state in enumerate(states)]
    for task in tasks:
        store.add(task)
    change = lifecycle.ASSIGN.bind(executor="ex", now=at(200))
    wanted = [t.id for s, t in zip(states, tasks, strict=True) if lifecycle.apply(change, s)]
    assert [t.id for t in store.assign("ex", len(states), at(200))] == wanted
    for state, task in zip(states, tasks, strict=True):
        assert _state(store.get(task.id)) == (lifecycle.apply(change, state) or state)

    result = full_result()
    calls: list[tuple[lifecycle.Transition, dict[str, Any], Callable[[str], bool]]] = [
        (lifecycle.PROGRESS, {"executor": "ex", "status": Status.RUNNING, "now": at(9)},
         lambda i: store.progress(i, "ex", Status.RUNNING, at(9))),
        (lifecycle.FINISH,
         {"executor": "ex", "status": Status.SUCCESS, "result": result, "now": at(9)},
         lambda i: store.finish(i, "ex", Status.SUCCESS, result, at(9))),
        (lifecycle.REQUEUE, {"executor": "ex", "now": at(9)},
         lambda i: store.requeue(i, "ex", at(9))),
        (lifecycle.CANCEL, {"now": at(9)}, lambda i: store.cancel(i, at(9))),
        (lifecycle.KEEP, {"executor": "ex", "result": result},
         lambda i: store.keep(i, "ex", result)),
    ]
    for transition, args, call in calls:
        tasks = [make_task(n, **vars(state)) for n, state in enumerate(states)]
        for task in tasks:
            store.add(task)
        for state, task in zip(states, tasks, strict=True):
            expected = lifecycle.apply(transition.bind(**args), state)
            assert call(task.id) == (expected is not None), (transition.name, state)
            assert _state(store.get(task.id)) == (expected or state), (transition.name, state)


def _state(task: Task | None) -> lifecycle.State:
    assert task is not None
    return lifecycle.State(task.done, task.status, task.executor, task.report_time, task.result)


# ----------------------------------------------------------------------------- executors


def test_executors_touch_list_remove(store: Store) -> None:
    assert store.executors(at(0)) == []
    store.touch_executor("zeta", at(1))
    store.touch_executor("alpha", at(2))
    (first_alpha,) = [e for e in store.executors(at(0)) if e.hostname == "alpha"]
    store.touch_executor("alpha", at(5))
    listed = store.executors(at(0))
    assert [(e.hostname, e.report_time) for e in listed] == [("alpha", at(5)), ("zeta", at(1))]
    assert listed[0].id == first_alpha.id  # refreshing keeps the record
    assert len(listed[0].id) == 24 and listed[0].id != listed[1].id
    # random, not an ObjectId's time + process + counter (shared first 9 bytes)
    assert listed[0].id[:18] != listed[1].id[:18], listed
    assert [e.hostname for e in store.executors(at(2))] == ["alpha"]  # inclusive
    assert store.remove_executors(at(1)) == []  # strictly older
    assert store.remove_executors(at(3)) == ["zeta"]
    assert [e.hostname for e in store.executors(at(0))] == ["alpha"]
    assert store.remove_executors(at(3)) == []
    assert store.remove_executor("alpha") and not store.remove_executor("alpha")
    assert store.executors(at(0)) == []


def test_concurrent_touch_of_a_new_executor(opener: Callable[[], Store]) -> None:
    stores = [opener(), opener()]
    errors: list[BaseException] = []

    def touch(i: int) -> None:
        try:
            stores[i % 2].touch_executor("same-host", at(i))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=touch, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors, errors
    assert [e.hostname for e in stores[0].executors(at(0))] == ["same-host"]


def test_data_survives_reopening(opener: Callable[[], Store]) -> None:
    first = opener()
    (task,) = add_tasks(first, 1)
    first.touch_executor("host", at(1))
    first.close()
    second = opener()
    assert second.get(task.id) == task
    assert [e.hostname for e in second.executors(at(0))] == ["host"]


# ----------------------------------------------------------------------------- MongoDB only


def test_mongodb_claim_left_by_a_dead_judicator_expires(mongo_url: str) -> None:
    from khala.store.mongo.ferret import FerretStore
    from khala.store.mongo.ferret_claims import CLAIM_STALE_SECONDS

    store = open_store(mongo_url)
    assert isinstance(store, FerretStore)  # the test server says it is FerretDB
    try:
        fresh, stuck = add_tasks(store, 2)
        claims = store._claims  # the judicator died between its claim and its update
        claims.insert_one({"_id": fresh.id, "at": time.time()})  # names no writer
        claims.insert_one({"_id": stuck.id, "at": time.time() - CLAIM_STALE_SECONDS - 1})
        (got,) = store.assign("ex", 2, at(1))  # the stale claim is cleared, the live one kept
        assert got.id == stuck.id and got.executor == "ex"
        assert store.get(fresh.id).executor is None  # type: ignore[union-attr]
    finally:
        store.close()


def test_mongodb_claims_of_gone_judicators_clear_at_once(mongo_url: str) -> None:
    """Claims name their writer (a judicator's store): one whose heartbeat stopped, or that
    never beat (an earlier incarnation of a restarted judicator), is cleared once a second
    old; a live writer's claim, and one naming no writer, are left alone."""
    from khala.store.mongo.ferret import FerretStore
    from khala.store.mongo.ferret_claims import WRITER_STALE_SECONDS

    store = open_store(mongo_url)
    other = open_store(mongo_url)  # a live judicator
    assert isinstance(store, FerretStore) and isinstance(other, FerretStore)
    try:
        live, gone, restarted, unknown = add_tasks(store, 4)
        old = time.time() - 2  # same machine: the server's clock
        store._writers._beats.insert_one({"_id": "gone", "at": old - WRITER_STALE_SECONDS})
        for task, writer in ((live, other._writers.me), (gone, "gone"),
                             (restarted, "never-beat"), (unknown, None)):  # fmt: skip
            store._claims.insert_one({"_id": task.id, "writer": writer, "at": old,
                                      "token": "t"})
        got = store.assign("ex", 4, at(1))
        assert sorted(t.id for t in got) == sorted([gone.id, restarted.id])
        assert store.get(live.id).executor is None  # type: ignore[union-attr]
        assert store.get(unknown.id).executor is None  # type: ignore[union-attr]
    finally:
        other.close()
        store.close()
