"""The operations side of the judicator on domain types: executor statistics (kept in the store,
so every judicator answers for every executor) and the webhook records of tasks."""

from __future__ import annotations

import threading
import time
from typing import Any

from khala import model
from khala.errors import InvalidInput, NotFound
from khala.judicator.webhooks import check_callback_url
from khala.model import Task, Webhook
from khala.store.ops import OpsStore

#: An executor's statistics are written to the store at most this often (reports come faster).
STATS_EVERY = 0.5
#: Finished task ids kept for the webhook sender's next flush; past this (the store down for
#: long), more are dropped and the leader's sweep readies their webhooks.
MAX_FINISHED_PENDING = 100_000


class OpsApi:
    def __init__(self, ops: OpsStore, expiry: float, allow_internal: bool) -> None:
        self.store = ops
        self.expiry = expiry
        self.allow_internal = allow_internal
        self._lock = threading.Lock()
        self._written: dict[str, float] = {}
        self._finished: list[str] = []  # done here, webhooks not yet marked due (flush_finished)
        self.on_ready: Any = None  # called when webhooks become due (the sender's poke)

    # ------------------------------------------------------------------ executor statistics

    def record_stats(self, executor: str, stats: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._written.get(executor, -STATS_EVERY) < STATS_EVERY:
                return
            self._written[executor] = now
        self.store.put_executor_stats(executor, stats, model.now())

    def live_stats(self) -> list[dict[str, Any]]:
        return self.store.executor_stats(model.time_before(self.expiry))

    def executor_stats(self, name: str) -> list[dict[str, Any]]:
        """The latest statistics of every live executor, or of the one named (NotFound when it
        is not live)."""
        live = self.live_stats()
        if not name:
            return live
        found = [s for s in live if s["name"] == name]
        if not found:
            raise NotFound(f"no live executor {name!r}")
        return found

    # ------------------------------------------------------------------ webhooks

    def check(self, task: Task) -> None:
        """Refuse a callback URL that is malformed or points at the cluster (InvalidInput)."""
        if task.callback_url is not None:
            try:
                check_callback_url(task.callback_url, self.allow_internal)
            except ValueError as exc:
                raise InvalidInput(f"callback_url: {exc}") from exc

    def created(self, task: Task) -> None:
        if task.callback_url:
            self.store.add_webhook(task.id, task.callback_url)

    def attach(self, task: Task) -> Task:
        """The task with its webhook's delivery record, if it has one."""
        record = self.store.webhook(task.id)
        if record is not None:
            task.callback_url = record["url"]
            task.webhook = Webhook(url=record["url"], state=record["state"],
                                   attempts=int(record["attempts"] or 0),
                                   last_status=record["last_status"],
                                   last_error=record["last_error"] or "",
                                   delivered_at=record["delivered_at"] or "")
        return task

    def finished(self, task_ids: list[str]) -> None:
        """Tasks recorded done here: their pending webhooks become due. The store write is
        left to the webhook sender's thread (`flush_finished`), off the report that recorded
        them and batched; if this judicator dies first, the leader's sweep finds them."""
        if task_ids:
            with self._lock:
                if len(self._finished) < MAX_FINISHED_PENDING:
                    self._finished.extend(task_ids)
            if self.on_ready is not None:
                self.on_ready()

    def flush_finished(self) -> int:
        """Mark the webhooks of the tasks finished here since the last flush due; how many
        were pending (0: none of them has a webhook)."""
        with self._lock:
            ids, self._finished = self._finished, []
        if not ids:
            return 0
        try:
            return self.store.webhooks_ready(ids, model.now())
        except Exception:
            with self._lock:  # the store failed: try again on the next pass
                self._finished[:0] = ids[:MAX_FINISHED_PENDING]
            raise
