"""Pure rules of the FerretDB write locks: the bounded back-off and who may clear a lock
(no server; the locks themselves are tested through FerretDB in test_mongo_races.py)."""

from __future__ import annotations

import itertools

import pytest

from khala.store.mongo.docs import executor_key, job_key, task_key, webhook_key
from khala.store.mongo.ferret_claims import (
    CLAIM_MIN_AGE,
    CLAIM_STALE_SECONDS,
    Backoff,
    orphaned,
)
from khala.store.mongo.ferret_locks import (
    LOCK_RETRY_FIRST,
    LOCK_RETRY_MAX,
    LOCK_WAIT_SECONDS,
    retry_delays,
)


def test_retry_delays_double_up_to_the_maximum_and_stop_at_the_budget() -> None:
    delays = list(itertools.islice(retry_delays(), 10_000))
    assert len(delays) < 10_000  # bounded
    assert delays[0] == LOCK_RETRY_FIRST
    assert delays[1] == 2 * LOCK_RETRY_FIRST
    assert max(delays) == LOCK_RETRY_MAX
    assert sum(delays) == pytest.approx(LOCK_WAIT_SECONDS)
    # enough attempts early on: a lock held for a few milliseconds costs a few milliseconds
    assert sum(delays[:4]) < 0.02


def test_retry_delays_of_a_small_budget() -> None:
    assert sum(retry_delays(0.0025)) == pytest.approx(0.0025)
    assert list(retry_delays(0)) == []


def test_lock_keys_of_tasks_jobs_executors_and_webhooks_do_not_meet() -> None:
    name = "6b031133149992efe5d2ddd8"
    assert task_key(name) == name
    keys = {task_key(name), job_key(name), executor_key(name), webhook_key(name)}
    assert len(keys) == 4


LIVE = {"alive": True, "gone": False}


@pytest.mark.parametrize(
    ("owner", "age", "cleared"),
    [
        ("gone", CLAIM_MIN_AGE + 0.1, True),  # its writer's heartbeat stopped
        ("gone", CLAIM_MIN_AGE - 0.1, False),  # too young: it may still be in flight
        ("alive", CLAIM_MIN_AGE + 0.1, False),  # a live writer's lock is kept
        ("alive", CLAIM_STALE_SECONDS + 1, True),  # ...until it is stale in any case
        ("never-beat", CLAIM_MIN_AGE + 0.1, True),  # no heartbeat at all (a restart's old self)
        ("", CLAIM_MIN_AGE + 5, False),  # written without a writer: wait for staleness
        ("me", CLAIM_MIN_AGE + 5, False),  # this writer: which thread holds it decides
    ],
)
def test_orphaned_rules(owner: str, age: float, cleared: bool) -> None:
    lock = {"_id": "t", "writer": owner, "at": 0.0}
    assert orphaned(lock, age, "me", lambda name: LIVE.get(name, False)) is cleared


def test_backoff_holds_a_task_for_a_growing_while() -> None:
    backoff = Backoff()
    assert backoff.held() == set()
    backoff.hold("t")
    assert backoff.held() == {"t"}
