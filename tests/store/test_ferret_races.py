"""Every racing transition on the real FerretDB, from two judicators' stores at once: each pair
of a task's writes, assignment against cancel, a job's save against its delete, a webhook's
claims and outcomes, an executor's refresh against its removal.

FerretDB v1 applies a conditional update or delete as a read and then a whole-document write by
`_id`, so without the FerretDB store's locks (khala/store/mongo/ferret_locks.py) two writes that
start from the same state can both be acknowledged and the later silently revert the earlier.
What is checked is the meaning of a serial history: the writes acknowledged, and the state
stored, are those of the two writes applied one after the other in some order (the life cycle's
reference meaning, khala/rules/lifecycle.py).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from khala.model import Result, Status, StepReport, Task
from khala.rules import lifecycle
from khala.store.mongo.ferret import FerretStore
from tests.store.test_contract import add_tasks, at
from tests.store.test_contract_ops import attempted
from tests.store.test_mongo_races import TASKS, held_tasks, race

RESULT = Result(execute_report=StepReport(exit_code=0, time=0.005))
# A held task's writes: the store call and the life cycle's change it makes.
WRITES = {
    "progress": (lambda s, t: s.progress(t.id, "ex", Status.RUNNING, at(2)),
                 lifecycle.PROGRESS.bind(executor="ex", status=Status.RUNNING, now=at(2))),
    "finish": (lambda s, t: s.finish(t.id, "ex", Status.SUCCESS, RESULT, at(2)),
               lifecycle.FINISH.bind(executor="ex", status=Status.SUCCESS, result=RESULT,
                                     now=at(2))),
    "requeue": (lambda s, t: s.requeue(t.id, "ex", at(2)),
                lifecycle.REQUEUE.bind(executor="ex", now=at(2))),
    "cancel": (lambda s, t: s.cancel(t.id, at(2)), lifecycle.CANCEL.bind(now=at(2))),
}


def state_of(task: Task | None) -> lifecycle.State:
    assert task is not None
    return lifecycle.State(task.done, task.status, task.executor, task.report_time, task.result)


def serial_outcomes(start: lifecycle.State, changes: tuple[lifecycle.Bound, lifecycle.Bound]
                    ) -> dict[tuple[bool, bool], list[lifecycle.State]]:
    """For each order of the two changes: which of them apply, and the state they leave."""
    outcomes: dict[tuple[bool, bool], list[lifecycle.State]] = {}
    for order in ((0, 1), (1, 0)):
        state, applied = start, [False, False]
        for i in order:
            after = lifecycle.apply(changes[i], state)
            applied[i] = after is not None
            state = after or state
        outcomes.setdefault((applied[0], applied[1]), []).append(state)
    return outcomes


@pytest.mark.parametrize(("first", "second"),
                         list(itertools.combinations_with_replacement(sorted(WRITES), 2)))
def test_two_writes_of_one_held_task_act_as_one_after_the_other(
    stores: tuple[FerretStore, FerretStore], first: str, second: str,
) -> None:
    tasks = held_tasks(stores[0])
    start = state_of(stores[0].get(tasks[0].id))
    answers = race(stores, tasks, WRITES[first][0], WRITES[second][0])
    possible = serial_outcomes(start, (WRITES[first][1], WRITES[second][1]))
    lost = []
    for task, answer in zip(tasks, answers, strict=True):
        stored = state_of(stores[1].get(task.id))
        if stored not in possible.get((bool(answer[0]), bool(answer[1])), []):
            lost.append((task.id, answer, stored.done, stored.status.name, stored.executor))
    assert not lost, f"{len(lost)} of {TASKS} tasks: no serial order explains {lost[:3]}"


def test_assignment_racing_cancels_keeps_every_cancel(
    stores: tuple[FerretStore, FerretStore],
) -> None:
    """Each round one judicator assigns the queue's head while the other cancels a task (an
    assigned one too: a cancel applies to any undone task). A cancel acknowledged stays (an
    assignment read before it must not write over it); an assignment is a task's only one. A
    cancel keeps the executor a task had (it names who ran it): exactly the assigned ones."""
    tasks = add_tasks(stores[0], TASKS)
    answers = race(stores, tasks, lambda s, _t: [t.id for t in s.assign("ex", 1, at(2))],
                   lambda s, t: s.cancel(t.id, at(2)))
    assigned = [i for got, _ in answers for i in got]
    cancelled = {t.id for t, (_, ok) in zip(tasks, answers, strict=True) if ok}
    assert len(assigned) == len(set(assigned)), "a task assigned twice"
    assert cancelled == {t.id for t in tasks}  # every task was undone when its cancel came
    for task in tasks:
        stored = stores[1].get(task.id)
        assert stored is not None
        ran = "ex" if task.id in assigned else None
        assert (stored.done, stored.status, stored.executor) == (True, Status.CANCELLED, ran)


def test_a_job_save_racing_its_delete_lets_one_win(stores: tuple[FerretStore, FerretStore]
                                                   ) -> None:
    names = [f"job-{i}" for i in range(TASKS)]
    for name in names:
        assert stores[0].create_job(name, {"name": name}, {"run": 0})
    answers = race(stores, names, lambda s, n: s.save_job(n, 0, {"run": 1}),
                   lambda s, n: s.delete_job(n, 0))
    assert all(saved != deleted for saved, deleted in answers), "both or neither acknowledged"
    for name, (saved, _) in zip(names, answers, strict=True):
        stored = stores[1].job(name)
        assert (stored is not None) == saved
        assert stored is None or (stored.version, stored.state) == (1, {"run": 1})


def due_webhooks(store: FerretStore) -> list[str]:
    ids = [f"t{i:03d}" for i in range(TASKS)]
    for task_id in ids:
        store.ops.add_webhook(task_id, f"http://h/{task_id}")
    assert store.ops.webhooks_ready(ids, at(1)) == TASKS
    return ids


def test_racing_webhook_claims_take_each_webhook_once(stores: tuple[FerretStore, FerretStore]
                                                      ) -> None:
    ids = due_webhooks(stores[0])

    def claim(store: FerretStore, _item: Any) -> str | None:
        got = store.ops.claim_webhook(at(2), at(60))
        return None if got is None else str(got["task_id"])

    answers = race(stores, ids, claim, claim)
    claimed = [i for pair in answers for i in pair if i is not None]
    assert len(claimed) == len(set(claimed)), "one webhook claimed by both judicators"
    assert sorted(claimed) == ids  # and none is left unclaimed
    assert stores[0].ops.claim_webhook(at(3), at(60)) is None


def test_a_late_outcome_racing_a_new_claim_of_its_webhook(
    stores: tuple[FerretStore, FerretStore],
) -> None:
    """A sender whose lease ran out writes its outcome while another judicator claims the
    webhook again: one of them wins, never both (a delivered webhook sent again, or a claim
    overwritten)."""
    ids = due_webhooks(stores[0])
    claims = {}
    for _ in ids:
        got = stores[0].ops.claim_webhook(at(2), at(20))
        assert got is not None
        claims[got["task_id"]] = got
    delivered = [attempted(claims[i], 1, 204, "", at_seconds=21) for i in ids]
    outcome = dict(zip(ids, delivered, strict=True))

    def reclaim(store: FerretStore, _item: Any) -> str | None:
        got = store.ops.claim_webhook(at(30), at(60))  # the lease (at 20) has run out
        return None if got is None else str(got["task_id"])

    answers = race(stores, ids, lambda s, i: s.ops.webhook_attempted(i, outcome[i]), reclaim)
    written = {i for i, (ok, _) in zip(ids, answers, strict=True) if ok}
    reclaimed = {i for _, i in answers if i is not None}
    assert not written & reclaimed, "an outcome written over a new claim, or the reverse"
    assert written | reclaimed == set(ids)  # a refused outcome is one whose webhook was claimed
    for task_id in ids:
        record = stores[1].ops.webhook(task_id)
        assert record is not None
        if task_id in written:
            assert (record["state"], record["last_status"]) == ("delivered", 204)
        elif task_id in reclaimed:
            assert (record["state"], record["lease_until"]) == ("sending", at(60))


def test_an_executor_refresh_racing_its_removal_is_never_lost(
    stores: tuple[FerretStore, FerretStore],
) -> None:
    """The reaper removes executors silent since before a time while they report: a record
    refreshed meanwhile must stay (a removal that read it silent deletes nothing)."""
    hosts = [f"host-{i:03d}" for i in range(TASKS)]
    for host in hosts:
        stores[0].touch_executor(host, at(0))
    answers = race(stores, hosts, lambda s, h: s.touch_executor(h, at(100)),
                   lambda s, _h: s.remove_executors(at(50)))
    assert all(touched is None for touched, _ in answers)
    listed = {x.hostname: x.report_time for x in stores[1].executors(at(0))}
    missing = [h for h in hosts if listed.get(h) != at(100)]
    assert not missing, f"{len(missing)} of {TASKS} refreshed executors lost: {missing[:3]}"
