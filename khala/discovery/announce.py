"""Announcements from one judicator to the others through etcd: the wake key (work queued, a
task cancelled or signalled: the others wake their executors' report long-polls) and the
finished key (tasks recorded done: the others wake their API v2 waiters). Used by the cluster
bus (khala/discovery/bus.py), which watches the keys."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from khala.etcd.client import ERRORS, REQUEST_TIMEOUT, Backoff, Worker, describe
from khala.etcd.watch import WATCH_IDLE

log = logging.getLogger(__name__)

FINISHED_MAX_IDS = 500  # more finished ids than this in one announcement: send "*" (everyone)


class Announcer(Worker):
    """Puts the wake key (work queued, a task cancelled or signalled) and the finished key (tasks
    recorded done) for the other judicators, on a thread of its own so that an announcement
    waits for nothing else (no keepalive, no campaign) and the caller never waits for etcd.
    While the watch shows no other judicator, nothing is put (a judicator that registers just
    then may miss a wake: its long-polls find the work on their store re-check).

    Announcements coalesce: while one put is in flight, any number of wakes become one pending
    wake and finished ids accumulate into one pending list, so a burst of N adds costs at most
    two puts in series, not N. A failed put is kept pending and retried after a backoff
    (judicators that miss a wake still re-check the store on their fallback interval)."""

    def __init__(self, endpoints: list[str], name: str, wake_key: str, finished_key: str,
                 alone: Callable[[], bool]) -> None:
        self.finished_key = finished_key
        self._alone = alone  # no other judicator is registered: announcements are dropped
        self._name = name
        self._wake_key = wake_key
        self._lock = threading.Lock()
        self._wake_pending = False
        self._finished_pending: list[str] = []
        super().__init__(endpoints, REQUEST_TIMEOUT, f"etcd-announce {name}")

    def stop(self) -> None:
        self._halt()
        self._pool.close()

    def wake(self) -> None:
        with self._lock:
            self._wake_pending = True
        self._kick.set()

    def finished(self, task_ids: list[str]) -> None:
        with self._lock:
            # past FINISHED_MAX_IDS the announcement is "*" anyway: keep the list bounded
            if len(self._finished_pending) <= FINISHED_MAX_IDS:
                self._finished_pending.extend(task_ids[: FINISHED_MAX_IDS + 1])
        self._kick.set()

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            if not self._kick.wait(WATCH_IDLE):
                continue
            self._kick.clear()
            if self._alone():  # a lone judicator (khala up): nobody to tell
                with self._lock:
                    self._wake_pending, self._finished_pending = False, []
                continue
            try:
                self._send_wake()
                self._send_finished()
                backoff.reset()
            except ERRORS as exc:
                log.warning("etcd announcement of %s failed: %s", self._name, describe(exc))
                self._pool.rotate()
                backoff.wait(self._stop)
                self._kick.set()  # what failed is pending again: retry

    def _send_wake(self) -> None:
        with self._lock:
            pending, self._wake_pending = self._wake_pending, False
        if not pending:
            return
        try:
            self._pool.client.put(self._wake_key, f"{self._name}\n{time.time()}")
        except ERRORS:
            with self._lock:
                self._wake_pending = True
            raise

    def _send_finished(self) -> None:
        with self._lock:
            ids, self._finished_pending = self._finished_pending, []
        if not ids:
            return
        listed = "*" if len(ids) > FINISHED_MAX_IDS else ",".join(ids)
        try:
            self._pool.client.put(self.finished_key, f"{self._name}\n{listed}")
        except ERRORS:
            with self._lock:
                self._finished_pending[:0] = ids[: FINISHED_MAX_IDS + 1]
            raise
