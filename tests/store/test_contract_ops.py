"""The operations store (executor statistics, webhook deliveries, the queue length) on SQLite
and on the MongoDB wire protocol (FerretDB): the same contract, two judicators sharing it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khala.model import Result, Status
from khala.rules import webhooks
from khala.store import open_store
from khala.store.base import Store
from khala.store.ops import OpsStore
from tests.store.test_contract import BASE, at, make_task


@pytest.fixture(params=["sqlite", pytest.param("mongodb", marks=pytest.mark.integration)])
def stores(request: pytest.FixtureRequest,
           tmp_path: Path) -> Iterator[tuple[Store, Callable[[], OpsStore]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/khala.db"
    else:
        url = request.getfixturevalue("mongo_url")
    tasks = open_store(url)
    opened: list[Store] = []

    def open_ops() -> OpsStore:  # another judicator's
        opened.append(open_store(url))
        return opened[-1].ops

    try:
        yield tasks, open_ops
    finally:
        for store in opened:
            store.close()
        tasks.close()


def test_queue_length_counts_pending_and_retrying(stores: tuple[Store, Callable[[], OpsStore]]
                                                  ) -> None:
    tasks, open_ops = stores
    ops = open_ops()
    assert ops.queue_length() == 0
    for i in range(3):
        tasks.add(make_task(i))
    assert ops.queue_length() == 3
    taken = tasks.assign("e1", 2, at(10))
    assert ops.queue_length() == 1
    assert tasks.requeue(taken[0].id, "e1", at(11))  # Retrying counts too
    assert ops.queue_length() == 2
    assert tasks.finish(taken[1].id, "e1", Status.SUCCESS, Result(), at(12))
    assert ops.queue_length() == 2


def test_executor_stats_latest_and_live_only(stores: tuple[Store, Callable[[], OpsStore]]
                                            ) -> None:
    _, open_ops = stores
    one, two = open_ops(), open_ops()
    one.put_executor_stats("b", {"slots": 2, "vacant": 2}, at(0))
    two.put_executor_stats("b", {"slots": 2, "vacant": 1}, at(5))
    one.put_executor_stats("a", {"slots": 4, "vacant": 4}, at(1))
    live = two.executor_stats(at(1))
    assert [(s["name"], s["vacant"], s["report_time"]) for s in live] == [
        ("a", 4, at(1)), ("b", 1, at(5))]
    assert [s["name"] for s in one.executor_stats(at(2))] == ["b"]


def test_webhook_claims_are_exclusive_and_retry(stores: tuple[Store, Callable[[], OpsStore]]
                                               ) -> None:
    _, open_ops = stores
    one, two = open_ops(), open_ops()
    one.add_webhook("t1", "http://h/1")
    one.add_webhook("t1", "http://h/other")  # a second add keeps the first
    assert two.webhook("t1")["url"] == "http://h/1"  # type: ignore[index]
    assert one.claim_webhook(at(10), at(20)) is None  # pending: the task is not done
    assert one.pending_webhooks(10) == ["t1"]
    two.webhooks_ready(["t1"], at(10))
    claimed = one.claim_webhook(at(10), at(20))
    assert claimed is not None and claimed["task_id"] == "t1" and claimed["state"] == "sending"
    assert two.claim_webhook(at(11), at(21)) is None  # leased to the first
    assert one.webhook_attempted("t1", attempted(claimed, 1, 500, "HTTP 500", at_seconds=10))
    assert two.claim_webhook(at(14), at(24)) is None  # not due yet (backoff 5 s)
    again = two.claim_webhook(at(15), at(25))
    assert again is not None and again["attempts"] == 1 and again["last_status"] == 500
    # The claimer died: its lease expires and the webhook is due again.
    assert one.claim_webhook(at(24), at(30)) is None
    taken = one.claim_webhook(at(26), at(36))
    assert taken is not None
    # The first claimer's outcome, late: its lease ran out and the webhook is claimed again.
    assert not two.webhook_attempted("t1", attempted(again, 2, 500, "late", at_seconds=26))
    assert one.webhook_attempted("t1", attempted(taken, 2, 204, "", at_seconds=26))
    assert two.claim_webhook(at(100), at(110)) is None
    final = two.webhook("t1")
    assert final is not None and final["state"] == "delivered" and final["attempts"] == 2
    assert (final["last_status"], final["delivered_at"]) == (204, at(26))
    assert two.webhook("nope") is None


def attempted(claimed: dict[str, Any], attempts: int, status: int, error: str,
              at_seconds: float) -> Any:
    """The change webhooks.attempted makes of a try (3 tries, backoff 5 s) at at(at_seconds)."""
    return webhooks.attempted(claimed["lease_until"], attempts, status, error, gone=False,
                              tries=3, backoff=5.0,
                              now=BASE + dt.timedelta(seconds=at_seconds))


def test_pending_webhooks_come_in_pages_by_task_id(stores: tuple[Store, Callable[[], OpsStore]]
                                                   ) -> None:
    _, open_ops = stores
    ops = open_ops()
    for task_id in ["t3", "t1", "t5", "t2", "t4"]:
        ops.add_webhook(task_id, f"http://h/{task_id}")
    ops.webhooks_ready(["t2"], at(1))  # no longer pending
    assert ops.pending_webhooks(2) == ["t1", "t3"]
    assert ops.pending_webhooks(2, "t3") == ["t4", "t5"]
    assert ops.pending_webhooks(2, "t5") == []
