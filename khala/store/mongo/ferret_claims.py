"""Who may clear a FerretDB write lock (khala/store/mongo/ferret_locks.py): the writers'
heartbeats, the server's clock, and backing off from tasks someone else holds.

A lock lives for milliseconds while its writer (one FerretStore: one judicator process) writes a
document. A writer that dies in between leaves it behind, and the document is blocked until the
lock is cleared. Each writer beats in the `writers` collection ({_id: its incarnation, at: the
server's clock, host, pid: for the operator}) every WRITER_BEAT_SECONDS; one silent past
WRITER_STALE_SECONDS, or without a beat at all, is gone, and its locks may be cleared. No
judicator or etcd is needed for that: the store tells its writers apart by themselves.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

CLAIM_STALE_SECONDS = 60.0  # past this (server clock) any lock is orphaned, its writer unknown
CLAIM_MIN_AGE = 0.5  # a lock of a writer known to be gone is cleared once this old
CLOCK_REFRESH_SECONDS = 30.0  # how often the offset to the server's clock is measured again
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 1.0  # seconds a held task is left alone, doubling
BACKOFF_ENTRIES_MAX = 10_000  # held tasks remembered at most (oldest forgotten first)
WRITER_BEAT_SECONDS = 0.5  # how often a writer says it lives
WRITER_STALE_SECONDS = 3.0  # a writer silent this long (server clock) is gone


def orphaned(lock: Mapping[str, Any], age: float, me: str,
             is_live: Callable[[str], bool]) -> bool:
    """Whether a lock `age` seconds old (server clock) may be cleared by writer `me`. (A lock
    of `me` itself is a matter of which of its threads holds it: Locks.left_by_me.)"""
    if age > CLAIM_STALE_SECONDS:
        return True
    if age < CLAIM_MIN_AGE:
        return False
    owner = str(lock.get("writer") or "")
    if not owner or owner == me:
        return False  # a lock naming no writer (an older version's) waits for staleness
    return not is_live(owner)


class ServerClock:
    """Seconds since the epoch by the store server's clock: the local clock plus an offset
    measured against the server every CLOCK_REFRESH_SECONDS (judicators' clocks may differ)."""

    def __init__(self, server_time: Callable[[], float]) -> None:
        self._server_time = server_time
        self._offset = 0.0
        self._measured = -CLOCK_REFRESH_SECONDS
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            if time.monotonic() - self._measured >= CLOCK_REFRESH_SECONDS:
                sent = time.time()
                server = self._server_time()
                received = time.time()
                self._offset = server - (sent + received) / 2
                self._measured = time.monotonic()
            return time.time() + self._offset


class Writers:
    """This writer's heartbeat, on a thread of its own from the first beat (made at once, before
    any lock is taken) until `close`, and whether another writer lives."""

    def __init__(self, beats: Collection[dict[str, Any]], now: Callable[[], float]) -> None:
        self.me = uuid.uuid4().hex
        self._beats = beats
        self._now = now
        self._stop = threading.Event()
        self._swept = 0.0
        self.beat()
        self._thread = threading.Thread(target=self._run, name="khala-store-writer",
                                        daemon=True)
        self._thread.start()

    def beat(self) -> None:
        now = self._now()
        self._beats.replace_one({"_id": self.me}, {"_id": self.me, "at": now, "pid": os.getpid(),
                                                   "host": socket.gethostname()}, upsert=True)
        if now - self._swept > CLAIM_STALE_SECONDS:
            # Beats of writers gone for longer than any lock can stand are of no use any more.
            self._beats.delete_many({"at": {"$lt": now - CLAIM_STALE_SECONDS}})
            self._swept = now

    def is_live(self, writer: str) -> bool:
        doc = self._beats.find_one({"_id": writer})
        return doc is not None and self._now() - float(doc["at"]) <= WRITER_STALE_SECONDS

    def close(self) -> None:
        """Stop beating and say so (this writer holds no lock any more)."""
        self._stop.set()
        self._thread.join(5.0)
        try:
            self._beats.delete_one({"_id": self.me})
        except PyMongoError:
            pass  # the beat goes stale instead

    def _run(self) -> None:
        while not self._stop.wait(WRITER_BEAT_SECONDS):
            try:
                self.beat()
            except PyMongoError as exc:  # the next beat tries again; others wait meanwhile
                log.warning("store writer heartbeat failed: %s", exc)


class Backoff:
    """Tasks this store leaves alone for a while because another writer holds them."""

    def __init__(self) -> None:
        self._held: dict[Any, tuple[float, float]] = {}  # task → (until, last delay)
        self._lock = threading.Lock()

    def hold(self, task: Any) -> None:
        with self._lock:
            _, last = self._held.pop(task, (0.0, 0.0))
            delay = min(BACKOFF_MAX, max(BACKOFF_FIRST, last * 2))
            self._held[task] = (time.monotonic() + delay, delay)
            while len(self._held) > BACKOFF_ENTRIES_MAX:
                del self._held[next(iter(self._held))]

    def held(self) -> set[Any]:
        """Tasks still held now (expired entries are kept for their delay history briefly)."""
        now = time.monotonic()
        with self._lock:
            for task in [t for t, (until, delay) in self._held.items() if until + 10 * delay < now]:
                del self._held[task]
            return {t for t, (until, _) in self._held.items() if until > now}
