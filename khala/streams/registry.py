"""Where each executor's stream endpoint is: `<prefix>/streams/<executor name>` → HOST:PORT in
etcd, on a lease of the executor's own (gone within STREAM_TTL of its death). Gateways look the
holder of a task up when a client follows it. Without etcd (static discovery) there is no
registry: followers then get a task's output when it ends (docs/streaming.md)."""

from __future__ import annotations

import logging
import threading
import time

from khala.config import DiscoverySettings, split_addresses
from khala.etcd.client import ERRORS, Pool, describe
from khala.etcd.lease import LeaseKeeper
from khala.rpc.auth import NodeAuth

log = logging.getLogger(__name__)

STREAM_TTL = 10  # seconds of the executor's lease
LOOKUP_CACHE = 2.0  # seconds a gateway trusts an address it read


def registry_of(settings: DiscoverySettings) -> str:
    """The etcd endpoints of the registry: `stream_etcd` when the node has it, else `etcd`."""
    return str(getattr(settings, "stream_etcd", "") or settings.etcd)


def _key(prefix: str, executor: str) -> str:
    return f"{prefix.rstrip('/')}/streams/{executor}"


class EndpointRegistration:
    """Keeps `<prefix>/streams/<name>` → `address` alive on the executor's lease (khala/etcd/
    lease.py: never over the key of another process registered under the same name)."""

    def __init__(self, settings: DiscoverySettings, name: str, address: str) -> None:
        self._keeper = LeaseKeeper(split_addresses(registry_of(settings)),
                                   _key(settings.prefix, name), address, STREAM_TTL,
                                   name=f"stream endpoint of {name}")

    def start(self) -> None:
        self._keeper.start()

    def close(self) -> None:
        self._keeper.close()


class EndpointLookup:
    """A gateway's view of the executors' stream endpoints (one etcd read per executor per
    LOOKUP_CACHE seconds); `find` is None without etcd or for an unregistered executor. `auth`
    is what the gateway proves to them: the cluster secret of its settings (None without)."""

    def __init__(self, settings: DiscoverySettings) -> None:
        self.auth = NodeAuth.from_file(settings.cluster_secret_file)
        endpoints = split_addresses(registry_of(settings))
        self._pool = Pool(endpoints, 2.0) if endpoints else None
        self._prefix = settings.prefix
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def find(self, executor: str) -> str | None:
        if self._pool is None or not executor:
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(executor)
            if hit is not None and hit[0] > now:
                return hit[1]
            try:
                values = self._pool.client.get(_key(self._prefix, executor))
                address = values[0].decode() if values else None
            except ERRORS as exc:
                log.warning("stream endpoint lookup failed: %s", describe(exc))
                self._pool.rotate()
                address = None
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[executor] = (now + LOOKUP_CACHE, address)
            return address
