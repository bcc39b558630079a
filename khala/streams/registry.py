"""Where each executor's stream endpoint is: `<prefix>/streams/<executor name>` → HOST:PORT in
etcd, on a lease of the executor's own (gone within STREAM_TTL of its death). Gateways look the
holder of a task up when a client follows it. Without etcd (static discovery) there is no
registry: followers then get a task's output when it ends (docs/streaming.md)."""

from __future__ import annotations

import logging
import threading
import time

from etcd3gw.lease import Lease

from khala.config import DiscoverySettings, split_addresses
from khala.discovery.etcd import ERRORS, _describe, _Pool

log = logging.getLogger(__name__)

STREAM_TTL = 10  # seconds of the executor's lease
LOOKUP_CACHE = 2.0  # seconds a gateway trusts an address it read


def registry_of(settings: DiscoverySettings) -> str:
    """The etcd endpoints of the registry: `stream_etcd` when the node has it, else `etcd`."""
    return str(getattr(settings, "stream_etcd", "") or settings.etcd)


def _key(prefix: str, executor: str) -> str:
    return f"{prefix.rstrip('/')}/streams/{executor}"


class EndpointRegistration:
    """Keeps `<prefix>/streams/<name>` → `address` alive on a lease (an executor's thread)."""

    def __init__(self, settings: DiscoverySettings, name: str, address: str) -> None:
        self._pool = _Pool(split_addresses(registry_of(settings)), 3.0)
        self._key, self._address = _key(settings.prefix, name), address
        self._lease: Lease | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="khala-stream-reg")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        if self._lease is not None:
            try:
                self._lease.revoke()
            except ERRORS:
                pass
        self._pool.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._lease is None or self._lease.refresh() <= 0:
                    client = self._pool.client
                    self._lease = client.lease(STREAM_TTL)
                    client.put(self._key, self._address, lease=self._lease)
                wait = STREAM_TTL / 3
            except ERRORS as exc:
                log.warning("stream endpoint registration failed: %s", _describe(exc))
                self._pool.rotate()
                self._lease, wait = None, 1.0
            self._stop.wait(wait)


class EndpointLookup:
    """A gateway's view of the executors' stream endpoints (one etcd read per executor per
    LOOKUP_CACHE seconds); `find` is None without etcd or for an unregistered executor."""

    def __init__(self, settings: DiscoverySettings) -> None:
        endpoints = split_addresses(registry_of(settings))
        self._pool = _Pool(endpoints, 2.0) if endpoints else None
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
                log.warning("stream endpoint lookup failed: %s", _describe(exc))
                self._pool.rotate()
                address = None
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[executor] = (now + LOOKUP_CACHE, address)
            return address
