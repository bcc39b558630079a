"""Per-document write locks of the FerretDB store (khala/store/mongo/ferret.py).

FerretDB v1 runs every update (`update_one`, `find_one_and_update`) and every delete as a query
followed by a write of the whole document by `_id`: two conditional updates of one document can
both match, and the later write silently reverts the earlier one (a cancel undone by a concurrent
progress write, a finish lost to a requeue, a webhook sent twice). Only an insert with a unique
`_id` is atomic there. So every write to a task, job, executor or webhook record first takes a
lock: the document `{_id: <key>}` inserted into the `claims` collection, deleted when the write
is done. One insert and one delete per write, no read unless the lock is held by someone else.

Keys (khala/store/mongo/docs.py): a task's lock is its id, a job's `job:<name>`, an executor's
`executor:<hostname>`, a webhook's `webhook:<task id>`. A lock names its writer (a store's
incarnation), the server's time and a random token. A lock whose writer is gone is cleared by
the rules of khala/store/mongo/ferret_claims.py (`orphaned`): once CLAIM_MIN_AGE old when the
writer's heartbeat has stopped, in any case after CLAIM_STALE_SECONDS. Clearing is itself
guarded by a unique insert (`<key>/clear/<token>`) so that two writers clearing the same orphan
cannot delete a lock taken after it (a FerretDB delete is also a query then a delete by `_id`).
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

from khala.errors import Unavailable
from khala.store.mongo.ferret_claims import orphaned

log = logging.getLogger(__name__)

#: The longest a write waits for another writer's lock on the same document before giving up
#: (LockHeld). Locks are held for a few milliseconds; the bound is reached only when a lock's
#: writer died and its heartbeat has not gone stale yet (ferret_claims.WRITER_STALE_SECONDS).
#: A report leaves such a task's write for its next report (khala/store/base.py: None), so it
#: stays well inside an executor's liveness.
LOCK_WAIT_SECONDS = 1.0
#: Sleep between attempts to take a held lock: first, then doubling up to the maximum.
LOCK_RETRY_FIRST, LOCK_RETRY_MAX = 0.001, 0.05
#: A held lock is read (to see whether it is orphaned) at most this often while waiting.
LOCK_INSPECT_SECONDS = 0.25


class LockHeld(Unavailable):
    """A document stayed locked by another writer for longer than a write waits (a lock left by
    a writer that died, until its heartbeat goes stale); retrying later may help."""


def retry_delays(budget: float = LOCK_WAIT_SECONDS) -> Iterator[float]:
    """The sleeps between attempts to take a held lock: doubling from LOCK_RETRY_FIRST up to
    LOCK_RETRY_MAX, until together they reach `budget` seconds (bounded)."""
    delay, spent = LOCK_RETRY_FIRST, 0.0
    while spent < budget:
        step = min(delay, budget - spent)
        yield step
        spent += step
        delay = min(LOCK_RETRY_MAX, delay * 2)


class Locks:
    """Write locks in one collection, taken by writer `writer`; `is_live` tells whether another
    writer lives (ferret_claims.Writers)."""

    def __init__(self, claims: Collection[dict[str, Any]], now: Callable[[], float],
                 writer: str, is_live: Callable[[str], bool]) -> None:
        self._claims = claims
        self._now = now  # the server's clock, seconds
        self.writer = writer
        self._is_live = is_live
        self.wait = LOCK_WAIT_SECONDS
        # Tokens of the locks this process holds (or is taking) now: a lock of this writer
        # whose token is not among them was left by a release that failed (server unreachable).
        self._mine: set[str] = set()
        self._mine_lock = threading.Lock()

    def try_take(self, key: str) -> str | None:
        """One attempt: the lock's token if this caller took it, None if it is held."""
        token = uuid.uuid4().hex
        with self._mine_lock:
            self._mine.add(token)
        try:
            self._claims.insert_one({"_id": key, "writer": self.writer, "at": self._now(),
                                     "token": token})
        except BaseException as exc:
            self._forget(token)
            if isinstance(exc, DuplicateKeyError):
                return None
            raise
        return token

    def release(self, key: str, token: str) -> None:
        # Deleted first, forgotten after: until the delete is done no thread of ours may take
        # the lock for a leftover of this process (`left_by_me`) and clear it.
        try:
            self._claims.delete_one({"_id": key, "token": token})
        finally:
            self._forget(token)

    def _forget(self, token: str) -> None:
        with self._mine_lock:
            self._mine.discard(token)

    def left_by_me(self, lock: Mapping[str, Any]) -> bool:
        """A lock of this writer that none of its threads holds: its release failed."""
        if lock.get("writer") != self.writer:
            return False
        with self._mine_lock:
            return lock.get("token") not in self._mine

    def clear_if_orphaned(self, key: str, nested: bool = False) -> bool:
        """Whether the lock `key` is gone now (released, or orphaned and cleared by us)."""
        lock = self._claims.find_one({"_id": key})
        if lock is None:
            return True
        age = self._now() - float(lock.get("at", 0.0))
        if not (orphaned(lock, age, self.writer, self._is_live) or self.left_by_me(lock)):
            return False
        marker = f"{key}/clear/{lock.get('token')}"
        token = self.try_take(marker)
        if token is None:
            if not nested:  # a clearer that died: its marker goes, the lock next time
                self.clear_if_orphaned(marker, nested=True)
            return False
        try:
            log.warning("clearing lock %s of writer %s (gone)", key, lock.get("writer"))
            self._claims.delete_one({"_id": key, "token": lock.get("token")})
        finally:
            self.release(marker, token)
        return True

    @contextlib.contextmanager
    def hold(self, key: str, insist: bool = True) -> Iterator[None]:
        """Hold the lock `key` for the block, waiting (bounded) while someone else holds it.
        Past `wait` seconds: LockHeld, or (`insist` False) the block runs without the lock."""
        try:
            token: str | None = self._take_waiting(key)
        except LockHeld:
            if insist:
                raise
            log.warning("store lock %r held for over %.1f s: writing without it", key,
                        self.wait)
            token = None
        try:
            yield
        finally:
            if token is not None:
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
            raise LockHeld(f"store lock {key!r} held for over {self.wait:.1f} s")
        return token
