"""Per-document write locks of the MongoDB store on FerretDB (the test server).

FerretDB v1 runs every update (`update_one`, `find_one_and_update`) and every delete as a query
followed by a write of the whole document by `_id`: two conditional updates of one task can both
match, and the later write silently reverts the earlier one (a cancel undone by a concurrent
progress write, a finish lost to a requeue). Only an insert with a unique `_id` is atomic there.
So on such a server every write to a task (assign, progress, finish, requeue, cancel, remove) and
to a job first takes a lock: the document `{_id: <key>}` inserted into the `claims` collection,
deleted when the write is done. One insert and one delete per write, no read unless the lock is
held by someone else. On MongoDB (atomic conditional updates) no lock is taken.

Keys: a task's lock is its id (`<task id>`), a job's `job:<name>`. A lock names its judicator,
that judicator's incarnation, the server's time and a random token. A lock whose judicator is
gone is cleared by the rules of khala/store/claims.py (`orphaned`): at once when the judicator is
known to be gone, in any case after CLAIM_STALE_SECONDS. Clearing is itself guarded by a unique
insert (`<key>/clear/<token>`) so that two judicators clearing the same orphan cannot delete a
lock taken after it (a FerretDB delete is also a query then a delete by `_id`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from khala.errors import Locked
from khala.store.claims import Claimer, orphaned

log = logging.getLogger(__name__)

#: The longest a write waits for another judicator's lock on the same document before giving
#: up with Locked (an Unavailable: a client's call fails and may be retried; a report leaves
#: that task for its next report, judicator/service.py). A judicator lowers it to a quarter of
#: its executor expiry (`set_wait`). Locks are held for a few milliseconds; the bound is only
#: reached when a lock's judicator died and its liveness is not known yet (see
#: claims.CLAIM_MIN_AGE, CLAIM_STALE_SECONDS).
LOCK_WAIT_SECONDS = 5.0
#: Sleep between attempts to take a held lock: first, then doubling up to the maximum.
LOCK_RETRY_FIRST, LOCK_RETRY_MAX = 0.001, 0.05
#: A held lock is read (to see whether it is orphaned) at most this often while waiting.
LOCK_INSPECT_SECONDS = 0.25


def retry_delays(budget: float = LOCK_WAIT_SECONDS) -> Iterator[float]:
    """The sleeps between attempts to take a held lock: doubling from LOCK_RETRY_FIRST up to
    LOCK_RETRY_MAX, until together they reach `budget` seconds (bounded)."""
    delay, spent = LOCK_RETRY_FIRST, 0.0
    while spent < budget:
        step = min(delay, budget - spent)
        yield step
        spent += step
        delay = min(LOCK_RETRY_MAX, delay * 2)


def task_key(task_id: Any) -> str:
    return str(task_id)


def job_key(name: str) -> str:
    return f"job:{name}"


class Locks:
    """Write locks in one collection; `enabled` False (MongoDB) makes every call a no-op."""

    def __init__(self, claims: Collection[dict[str, Any]], now: Callable[[], float],
                 enabled: bool) -> None:
        self._claims = claims
        self._now = now  # the server's clock, seconds
        self.enabled = enabled
        self.claimer = Claimer()
        self.wait = LOCK_WAIT_SECONDS  # how long a write waits for a held lock (set_wait)
        # Tokens of the locks this process holds (or is taking) now: a lock of this incarnation
        # whose token is not among them was left by a release that failed (server unreachable).
        self._mine: set[str] = set()
        self._mine_lock = threading.Lock()

    def set_wait(self, seconds: float) -> None:
        """Wait at most `seconds` (and never over LOCK_WAIT_SECONDS) for a held lock."""
        self.wait = max(0.0, min(LOCK_WAIT_SECONDS, seconds))

    def try_take(self, key: str) -> str | None:
        """One attempt: the lock's token if this caller took it, None if it is held."""
        token = uuid.uuid4().hex
        with self._mine_lock:
            self._mine.add(token)
        try:
            self._claims.insert_one({
                "_id": key, "judicator": self.claimer.name,
                "incarnation": self.claimer.incarnation, "at": self._now(), "token": token,
            })  # fmt: skip
        except BaseException as exc:
            self._forget(token)
            if isinstance(exc, DuplicateKeyError):
                return None
            raise
        return token

    def release(self, key: str, token: str) -> None:
        # Deleted first, forgotten after: until the delete is done no thread of ours may take
        # the lock for a leftover of this process (`_left_by_me`) and clear it.
        try:
            self._claims.delete_one({"_id": key, "token": token})
        finally:
            self._forget(token)

    def _forget(self, token: str) -> None:
        with self._mine_lock:
            self._mine.discard(token)

    def _left_by_me(self, lock: Mapping[str, Any]) -> bool:
        """A lock of this process that none of its threads holds: its release failed."""
        if lock.get("incarnation") != self.claimer.incarnation:
            return False
        with self._mine_lock:
            return lock.get("token") not in self._mine

    def clear_if_orphaned(self, key: str, nested: bool = False) -> bool:
        """Whether the lock `key` is gone now (released, or orphaned and cleared by us)."""
        lock = self._claims.find_one({"_id": key})
        if lock is None:
            return True
        age = self._now() - float(lock.get("at", 0.0))
        if not (orphaned(lock, age, self.claimer) or self._left_by_me(lock)):
            return False
        marker = f"{key}/clear/{lock.get('token')}"
        token = self.try_take(marker)
        if token is None:
            if not nested:  # a clearer that died: its marker goes, the lock next time
                self.clear_if_orphaned(marker, nested=True)
            return False
        try:
            log.warning("clearing lock %s of %s (gone)", key, lock.get("judicator"))
            self._claims.delete_one({"_id": key, "token": lock.get("token")})
        finally:
            self.release(marker, token)
        return True

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold the lock `key` for the block, waiting (bounded) while someone else holds it.
        Raises Locked (an Unavailable) past `wait` seconds."""
        if not self.enabled:
            yield
            return
        token = self._take_waiting(key)
        try:
            yield
        finally:
            self.release(key, token)

    def _take_waiting(self, key: str) -> str:
        inspected = -LOCK_INSPECT_SECONDS
        for delay in retry_delays(self.wait):
            token = self.try_take(key)
            if token is not None:
                return token
            if time.monotonic() - inspected >= LOCK_INSPECT_SECONDS:
                inspected = time.monotonic()
                if self.clear_if_orphaned(key):
                    continue
            time.sleep(delay)
        token = self.try_take(key)
        if token is None:
            raise Locked(f"store lock {key!r} held for over {self.wait:.1f} s")
        return token
