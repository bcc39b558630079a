"""Pure rules of the FerretDB write locks: the bounded back-off and who may clear a lock
(no server; the locks themselves are tested through FerretDB in test_mongo_races.py)."""

from __future__ import annotations

import itertools

import pytest

from khala.store.claims import CLAIM_MIN_AGE, CLAIM_STALE_SECONDS, Backoff, Claimer, orphaned
from khala.store.mongo_locks import (
    LOCK_RETRY_FIRST,
    LOCK_RETRY_MAX,
    LOCK_WAIT_SECONDS,
    job_key,
    retry_delays,
    task_key,
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


def test_lock_keys_of_tasks_and_jobs_do_not_meet() -> None:
    assert task_key("6b031133149992efe5d2ddd8") == "6b031133149992efe5d2ddd8"
    assert job_key("6b031133149992efe5d2ddd8") != task_key("6b031133149992efe5d2ddd8")


ME = Claimer("me", {"alive": True, "gone": False}.get, incarnation="now")


@pytest.mark.parametrize(
    ("owner", "incarnation", "age", "cleared"),
    [
        ("gone", "x", CLAIM_MIN_AGE + 0.1, True),  # its judicator is known to be gone
        ("gone", "x", CLAIM_MIN_AGE - 0.1, False),  # too young: it may still be in flight
        ("alive", "x", CLAIM_MIN_AGE + 0.1, False),  # a live judicator's lock is kept
        ("alive", "x", CLAIM_STALE_SECONDS + 1, True),  # ...until it is stale in any case
        ("unknown", "x", CLAIM_MIN_AGE + 5, False),  # liveness unknown: wait for staleness
        ("", "x", CLAIM_MIN_AGE + 5, False),  # written without a name
        ("me", "before", CLAIM_MIN_AGE + 0.1, True),  # an earlier incarnation of me
        ("me", "now", CLAIM_MIN_AGE + 5, False),  # this incarnation: still working on it
    ],
)
def test_orphaned_rules(owner: str, incarnation: str, age: float, cleared: bool) -> None:
    lock = {"_id": "t", "judicator": owner, "incarnation": incarnation, "at": 0.0}
    assert orphaned(lock, age, ME) is cleared


def test_backoff_holds_a_task_for_a_growing_while() -> None:
    backoff = Backoff()
    assert backoff.held() == set()
    backoff.hold("t")
    assert backoff.held() == {"t"}
