"""A judicator's registration in etcd and its campaign for leadership.

`<prefix>/judicators/<name>` → HOST:PORT is kept on the judicator's lease by a LeaseKeeper
(khala/etcd/lease.py): never put over a key another lease holds, so a judicator of another
cluster registered under the same name (an orphan of an earlier `khala up`) keeps its key and
this one stays unregistered, takes no traffic and does not lead, until that key is gone.
Leadership: `<prefix>/leader` → <name>, created on the lease only if absent, checked on every
keepalive round and followed by a watch so that a lost key ends leadership at once; a leader
that could not refresh its lease for two thirds of the TTL stops leading before the lease can
expire. Leadership belongs to the lease it was won on: a judicator back from a partition, its
lease lost and granted anew, does not lead until a campaign on the new lease wins (its watch may
not have caught up on who leads now).
"""

from __future__ import annotations

import logging
import threading
import time

from etcd3gw.client import Etcd3Client

from khala.discovery.base import Registration
from khala.etcd.client import create
from khala.etcd.lease import LeaseKeeper
from khala.etcd.watch import KeyValue, PrefixWatch

log = logging.getLogger(__name__)


class EtcdRegistration(Registration):
    """A judicator's key on a lease kept alive every ttl/3, and its campaign for leadership."""

    def __init__(
        self, endpoints: list[str], prefix: str, name: str, address: str, ttl: int
    ) -> None:
        base = prefix.rstrip("/")
        self._name = name
        self._trust = ttl - ttl / 3  # leadership holds this long after a keepalive was sent
        self._leader_key = f"{base}/leader"
        # The lease on which this judicator won the leader key, or None: leadership won on a lease
        # that has since been lost ends with it, even before the watch or a campaign says so.
        self._leading_on: int | None = None
        # What the watch saw last stands over a campaign's answer that crossed it: the watch
        # counts each leadership it ended, and a campaign whose count changed meanwhile leaves
        # the decision to the round the watch kicked.
        self._lock = threading.Lock()
        self._ended = 0
        self._keeper = LeaseKeeper(endpoints, f"{base}/judicators/{name}", address, ttl,
                                   after_round=self._campaign, name=name)
        self._watch = PrefixWatch(endpoints, self._leader_key, self._on_reset, self._on_event)

    # ------------------------------------------------------------------ Registration

    def start(self) -> None:
        self._keeper.start()
        self._watch.start()

    def is_leader(self) -> bool:
        # Read in this order: the keeper sets a new lease id before that lease's `held` and
        # `alive_at`, so a fresh keepalive read here is never paired with an older lease.
        alive_at, held = self._keeper.alive_at, self._keeper.held
        lease_id = self._keeper.lease_id
        return (held and time.monotonic() - alive_at < self._trust and lease_id is not None
                and self._leading_on == lease_id)

    def registered(self) -> bool:
        """Whether this judicator's key is on its lease (not held by another process)."""
        return self._keeper.held

    def close(self) -> None:
        self._watch.stop()
        self._leading_on = None
        self._keeper.close()

    def pause_keepalives(self, paused: bool) -> None:
        """Test hook: stop (or resume) keepalives without revoking, as a stalled judicator."""
        self._keeper.pause(paused)

    # ------------------------------------------------------------------ campaign

    def _campaign(self, client: Etcd3Client, lease_id: int) -> None:
        """Create the leader key on our lease if it does not exist; else see whose it is."""
        ended = self._ended
        holder = create(client, self._leader_key, self._name, lease_id)
        leader = holder is None or holder == lease_id
        with self._lock:
            if self._ended != ended:
                return  # the watch saw the key change meanwhile; its kick runs a new round
            if leader and self._leading_on != lease_id:
                log.info("judicator %s is now the leader", self._name)
            self._leading_on = lease_id if leader else None

    # ------------------------------------------------------------------ watch thread

    def _on_reset(self, entries: dict[str, KeyValue]) -> None:
        self._seen(entries.get(self._leader_key))

    def _on_event(self, key: str, kv: KeyValue | None) -> None:
        if key == self._leader_key:
            self._seen(kv)

    def _seen(self, kv: KeyValue | None) -> None:
        """The leader key as the watch shows it: gone or someone else's, this judicator stops
        leading now and campaigns again."""
        if kv is None or int(kv.get("lease", 0)) != self._keeper.lease_id:
            with self._lock:
                self._leading_on = None
                self._ended += 1
            self._keeper.kick()
