"""The API v2 store methods, on SQLite and on the MongoDB-wire server (FerretDB), including
keyed submission raced by 50 threads on separate store connections (as 50 judicators)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from khala.config import JudicatorSettings
from khala.judicator.notifier import DoneWatch
from khala.judicator.tasks import TaskApi
from khala.model import Code, PageQuery, Status, Task
from khala.store.base import Store
from tests.store.test_contract import at, make_task, opener, store  # noqa: F401 - fixtures used by name


def api(backend: Store) -> TaskApi:
    return TaskApi(backend, JudicatorSettings(), DoneWatch(), lambda: None, lambda: None)


def keyed(key: str, command: str = "echo hi") -> Task:
    task = make_task(key=key)
    task.execute.command = command
    return task


def test_fifty_racing_keyed_submissions_store_one_task(opener: Callable[[], Store]) -> None:  # noqa: F811
    stores = [opener() for _ in range(10)]

    def submit(i: int) -> tuple[int, str, bool]:
        outcome = api(stores[i % 10]).submit([keyed("race-1")])[0]
        return outcome.code, outcome.id, outcome.created

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(submit, range(50)))
    assert {code for code, _, _ in outcomes} == {Code.OK}
    assert len({task_id for _, task_id, _ in outcomes}) == 1
    assert sum(created for _, _, created in outcomes) == 1
    briefs = stores[0].page(PageQuery(limit=100))
    assert [b.key for b in briefs] == ["race-1"]


def test_same_key_different_body_conflicts(store: Store) -> None:  # noqa: F811
    first = api(store).submit([keyed("k1")])[0]
    again = api(store).submit([keyed("k1")])[0]
    other = api(store).submit([keyed("k1", "echo other")])[0]
    assert (first.code, first.created) == (Code.OK, True)
    assert (again.code, again.created, again.id) == (Code.OK, False, first.id)
    assert other.code == Code.CONFLICT
    assert store.resolve("k1") == first.id and store.resolve(first.id) == first.id
    assert store.resolve("nope") is None
    task = store.get(first.id)
    assert task is not None and task.key == "k1"


def test_a_callback_url_is_stored_with_its_task_and_part_of_its_body(
        opener: Callable[[], Store]) -> None:  # noqa: F811
    """Racing keyed submissions with two callback URLs: one task, with its creator's URL;
    every submission with that URL is OK, every one with the other a CONFLICT."""
    stores = [opener() for _ in range(10)]

    def submit(i: int) -> tuple[int, str, bool, str]:
        task = keyed("hooked")
        task.callback_url = f"http://hooks.example/{i % 2}"
        outcome = api(stores[i % 10]).submit([task])[0]
        return outcome.code, outcome.id, outcome.created, task.callback_url

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(submit, range(50)))
    created = [o for o in outcomes if o[2]]
    assert len(created) == 1
    winner = created[0][3]
    stored = stores[0].get(created[0][1])
    assert stored is not None and stored.callback_url == winner
    for code, _, _, url in outcomes:
        assert code == (Code.OK if url == winner else Code.CONFLICT), outcomes
    bare = api(stores[0]).submit([keyed("hooked")])[0]
    assert bare.code == Code.CONFLICT  # without the task's URL: another body too


def test_page_is_a_keyset_in_both_orders(store: Store) -> None:  # noqa: F811
    tasks = [make_task(i, user=3) for i in range(5)]
    for task in tasks:
        store.add(task)
    store.add(make_task(2.5, user=4))
    newest = store.page(PageQuery(user=3, limit=2))
    assert [b.id for b in newest] == [tasks[4].id, tasks[3].id]
    rest = store.page(PageQuery(user=3, limit=10, after_time=newest[-1].add_time,
                                after_id=newest[-1].id))
    assert [b.id for b in rest] == [t.id for t in tasks[2::-1]]
    oldest = store.page(PageQuery(user=3, limit=2, old_to_new=True, after_time=at(1),
                                  after_id=tasks[1].id))
    assert [b.id for b in oldest] == [tasks[2].id, tasks[3].id]
    store.cancel(tasks[0].id, at(9))
    cancelled = store.page(PageQuery(statuses=[int(Status.CANCELLED)], limit=10))
    assert [b.id for b in cancelled] == [tasks[0].id]
    ranged = store.page(PageQuery(user=3, start_time=at(1), end_time=at(2), limit=10))
    assert [b.id for b in ranged] == [tasks[2].id, tasks[1].id]


def test_remove_only_done_tasks_with_their_key_and_signals(store: Store) -> None:  # noqa: F811
    outcome = api(store).submit([keyed("gone")])[0]
    assert not store.remove(outcome.id)
    store.add_signal(outcome.id, 10, at(0))
    assert store.cancel(outcome.id, at(1))
    assert store.remove(outcome.id)
    assert store.get(outcome.id) is None and store.resolve("gone") is None
    assert store.take_signals([outcome.id]) == []
    assert not store.remove(outcome.id)


def test_signals_are_handed_out_once_in_order(opener: Callable[[], Store]) -> None:  # noqa: F811
    a, b = opener(), opener()
    task = make_task()
    a.add(task)
    for signum in (10, 12, 15):
        a.add_signal(task.id, signum, at(0))
    a.add_signal("other", 9, at(0))
    with ThreadPoolExecutor(2) as pool:
        taken = list(pool.map(lambda s: s.take_signals([task.id]), [a, b]))
    merged = sorted(taken[0] + taken[1], key=lambda x: (10, 12, 15).index(x[1]))
    assert merged == [(task.id, 10), (task.id, 12), (task.id, 15)]
    assert [s for s in taken[0]] == sorted(taken[0], key=lambda x: (10, 12, 15).index(x[1]))
    assert a.take_signals(["other"]) == [("other", 9)]


def test_signals_are_handed_out_in_add_time_order(store: Store) -> None:  # noqa: F811
    """Not in the order of their ids (or of their insertion): a signal sent through a
    judicator whose write landed later but that took it earlier goes first."""
    task = make_task()
    store.add(task)
    store.add_signal(task.id, 15, at(3))
    store.add_signal(task.id, 10, at(1))
    store.add_signal(task.id, 12, at(2))
    assert store.take_signals([task.id]) == [(task.id, 10), (task.id, 12), (task.id, 15)]


def test_page_by_key_prefix(store: Store) -> None:  # noqa: F811
    made = {key: api(store).submit([keyed(key)])[0].id
            for key in ("procs.a", "procs.b", "procs_c", "procsx", "other.a")}
    store.add(make_task(3))  # no key at all
    found = store.page(PageQuery(key_prefix="procs.", limit=10, old_to_new=True))
    assert [b.key for b in found] == ["procs.a", "procs.b"]
    assert [b.id for b in found] == [made["procs.a"], made["procs.b"]]
    assert [b.key for b in store.page(PageQuery(key_prefix="procs", limit=10,
                                                old_to_new=True))] == [
        "procs.a", "procs.b", "procs_c", "procsx"]
    assert store.page(PageQuery(key_prefix="zzz", limit=10)) == []
    mine = api(store).submit([keyed("procs.z")])[0]
    store.cancel(mine.id, at(9))
    done = store.page(PageQuery(key_prefix="procs.", statuses=[int(Status.CANCELLED)],
                                limit=10))
    assert [b.key for b in done] == ["procs.z"]
