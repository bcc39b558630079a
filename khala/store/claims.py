"""Claims (write locks) of the MongoDB store on FerretDB: who may clear one, the server's
clock, and backing off from tasks someone else has locked.

A task's lock (khala/store/mongo_locks.py) lives for milliseconds while its judicator writes the
task. A judicator that dies in between leaves it behind and the task is blocked until the lock
is cleared. The store does not know about etcd: the judicator hands it a `Claimer` naming itself
and a liveness predicate (`is_live(name)` → True, False, or None when it cannot tell, e.g. its
own view of the cluster is not current).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

CLAIM_STALE_SECONDS = 60.0  # past this (server clock) any claim is orphaned, liveness unknown
CLAIM_MIN_AGE = 1.0  # a claim of a judicator known to be gone is cleared once this old
CLOCK_REFRESH_SECONDS = 30.0  # how often the offset to the server's clock is measured again
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 1.0  # seconds a claimed task is left alone, doubling
BACKOFF_ENTRIES_MAX = 10_000  # held tasks remembered at most (oldest forgotten first)


def _unknown(name: str) -> bool | None:
    return None


@dataclass(frozen=True)
class Claimer:
    """This judicator as claims name it, and how it tells whether another one is alive."""

    name: str = ""
    is_live: Callable[[str], bool | None] = _unknown
    incarnation: str = field(default_factory=lambda: uuid.uuid4().hex)


def orphaned(claim: Mapping[str, Any], age: float, me: Claimer) -> bool:
    """Whether a claim `age` seconds old (server clock) may be cleared by `me`."""
    if age > CLAIM_STALE_SECONDS:
        return True
    if age < CLAIM_MIN_AGE:
        return False
    owner = str(claim.get("judicator") or "")
    if not owner:
        return False  # written before claims named their judicator: wait for staleness
    if owner == me.name:
        # Ours by name: an earlier incarnation of this judicator (restarted) is gone.
        return claim.get("incarnation") != me.incarnation
    return me.is_live(owner) is False


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


class Backoff:
    """Tasks this store leaves alone for a while because another judicator claimed them."""

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
