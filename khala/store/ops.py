"""The operations side of the store: executor statistics, webhook deliveries and the queue
length, kept beside the tasks (same SQLite file or MongoDB database, own tables/collections,
the same connections) so that every judicator sees what any of them recorded. Each backend's
`Store` carries its `OpsStore` as `store.ops`.

A webhook's delivery record moves through the states of khala/rules/webhooks.py (pending →
ready → sending → delivered/failed); every change is one conditional update the backend
translates from there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from khala.rules.states import Bound

WEBHOOK_FIELDS = ("task_id", "url", "state", "attempts", "next_at", "lease_until",
                  "last_status", "last_error", "delivered_at")


class OpsStore(ABC):
    @abstractmethod
    def queue_length(self) -> int:
        """Tasks waiting for an executor (Pending + Retrying)."""

    @abstractmethod
    def put_executor_stats(self, name: str, stats: dict[str, Any], now: str) -> None:
        """Keep the latest statistics an executor reported."""

    @abstractmethod
    def executor_stats(self, since: str) -> list[dict[str, Any]]:
        """The latest statistics of executors that reported at or after `since`, by name;
        each with `name` and `report_time`."""

    @abstractmethod
    def add_webhook(self, task_id: str, url: str) -> None:
        """Record a webhook of a new task (state pending)."""

    @abstractmethod
    def webhook(self, task_id: str) -> dict[str, Any] | None:
        """The delivery record of a task's webhook."""

    @abstractmethod
    def webhooks_ready(self, task_ids: list[str], now: str) -> int:
        """These tasks are done: their pending webhooks are due now (webhooks.MAKE_READY).
        Returns how many were pending."""

    @abstractmethod
    def pending_webhooks(self, limit: int, after: str = "") -> list[str]:
        """Up to `limit` task ids of webhooks still pending, in id order, after `after` (a
        sweep checks whether their task is done, page by page)."""

    @abstractmethod
    def claim_webhook(self, now: str, lease_until: str) -> dict[str, Any] | None:
        """Atomically take one due webhook (webhooks.CLAIM: the one due longest first) →
        sending until `lease_until`; its record after the claim, None when nothing is due."""

    @abstractmethod
    def webhook_attempted(self, task_id: str, change: Bound) -> bool:
        """Record the outcome of an attempt (webhooks.attempted) if its condition holds."""
