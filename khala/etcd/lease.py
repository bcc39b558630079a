"""Keeping one key alive on a lease of its own, never over a key another lease holds.

The key is put in a transaction only if it is absent (or already on this lease): a process that
finds the key held by another lease — another live node under the same name, such as an orphaned
judicator of an earlier cluster — leaves it alone, says so, and tries again each round, so it
takes the key only once the other's lease is gone. The lease is refreshed every ttl/3; a lost
lease (expired while this process stalled, or etcd restarted) is granted and the key claimed
again. `close` revokes the lease: the key goes at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from etcd3gw.client import Etcd3Client
from etcd3gw.lease import Lease

from khala.errors import ConfigError
from khala.etcd.client import ERRORS, REQUEST_TIMEOUT, Backoff, Worker, create, describe

log = logging.getLogger(__name__)

#: Called in the keeper's thread after each round in which the key is held: (client, lease id).
AfterRound = Callable[[Etcd3Client, int], None]


class LeaseKeeper(Worker):
    """`key` → `value` on a lease of `ttl` seconds, kept alive by a thread of its own."""

    def __init__(self, endpoints: list[str], key: str, value: str, ttl: int,
                 after_round: AfterRound | None = None, name: str = "") -> None:
        if ttl < 2:
            raise ConfigError(f"etcd lease TTL must be at least 2 seconds, not {ttl}")
        self.key, self.value, self.ttl = key, value, int(ttl)
        self._after_round = after_round
        self._name = name or key
        self.interval = ttl / 3
        self.lease_id: int | None = None
        self.held = False  # the key is on our lease
        self.alive_at = 0.0  # monotonic send time of the last round that kept the key held
        self._refused_by: int | None = None  # the other lease last seen holding the key
        self._paused = threading.Event()
        super().__init__(endpoints, min(REQUEST_TIMEOUT, max(0.5, ttl / 4)),
                         f"etcd-lease {self._name}")

    def kick(self) -> None:
        """Run a round now (not waiting for the interval)."""
        self._kick.set()

    def pause(self, paused: bool) -> None:
        """Test hook: stop (or resume) keepalives without revoking, as a stalled process."""
        if paused:
            self._paused.set()
        else:
            self._paused.clear()
        self._kick.set()

    def close(self) -> None:
        """Stop and revoke the lease (the key goes with it)."""
        self._halt()
        lease_id, self.lease_id, self.held = self.lease_id, None, False
        if lease_id is not None:
            self._revoke(lease_id)
        self._pool.close()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                if not self._paused.is_set():
                    self._round()
                backoff.reset()
                self._kick.wait(self.interval)
                self._kick.clear()
            except ERRORS as exc:
                log.warning("etcd keepalive of %s failed: %s", self._name, describe(exc))
                self._pool.rotate()
                backoff.wait(self._stop)

    def _round(self) -> None:
        client = self._pool.client
        sent = time.monotonic()
        if self.lease_id is not None and Lease(self.lease_id, client).refresh() <= 0:
            log.warning("etcd lease of %s was lost; registering again", self._name)
            self.lease_id, self.held = None, False
        if self.lease_id is None:
            self.lease_id, self.held = client.lease(self.ttl).id, False
        if not self.held:
            self.held = self._claim(client, self.lease_id)
        if self.held:
            self.alive_at = sent
            if self._after_round is not None:
                self._after_round(client, self.lease_id)

    def _claim(self, client: Etcd3Client, lease_id: int) -> bool:
        """Put the key on our lease if it is absent; whether it is on our lease now."""
        holder = create(client, self.key, self.value, lease_id)
        if holder is None or holder == lease_id:
            self._refused_by = None
            return True
        if holder != self._refused_by:
            log.error("etcd key %s is held by another lease (%x): another process registered "
                      "as %s; not taking it over (tried again every %.1f s)", self.key, holder,
                      self._name, self.interval)
        self._refused_by = holder
        return False

    def _revoke(self, lease_id: int) -> None:
        for _ in range(self._pool.size):
            try:
                Lease(lease_id, self._pool.client).revoke()
                return
            except ERRORS as exc:
                log.warning("revoking the etcd lease of %s failed: %s", self._name, describe(exc))
                self._pool.rotate()
