"""etcd discovery: the live judicators, kept current by a watch (khala/etcd/).

Keys under the prefix P (default /khala):
    P/judicators/<name>  → HOST:PORT   on the judicator's lease (registration.py): gone within
                                       the TTL of a death
    P/leader             → <name>      created only if absent, on the lease (registration.py)
    P/wake, P/finished                 the cluster bus's announcements (bus.py)
    P/streams/<executor> → HOST:PORT   executors' stream endpoints (khala/streams/registry.py)
"""

from __future__ import annotations

import threading

from khala.discovery.base import Discovery, JudicatorEntry
from khala.etcd.watch import KeyValue, PrefixWatch

FIRST_LIST_WAIT = 3.0  # EtcdDiscovery() waits this long for its first list


class EtcdDiscovery(Discovery):
    """The live judicators under `<prefix>/judicators/`, kept current by a watch."""

    def __init__(self, endpoints: list[str], prefix: str) -> None:
        self._key = f"{prefix.rstrip('/')}/judicators/"
        self._lock = threading.Lock()
        self._entries: dict[str, str] = {}
        self._listed = threading.Event()
        self._watch = PrefixWatch(endpoints, self._key, self._reset, self._event)
        self._watch.start()
        self._listed.wait(FIRST_LIST_WAIT)

    def judicators(self) -> list[JudicatorEntry]:
        with self._lock:
            return [JudicatorEntry(name=k, address=v) for k, v in sorted(self._entries.items())]

    def close(self) -> None:
        self._watch.stop()

    def _reset(self, entries: dict[str, KeyValue]) -> None:
        with self._lock:
            self._entries = {k: kv["value"].decode() for k, kv in entries.items()}
        self._listed.set()

    def _event(self, key: str, kv: KeyValue | None) -> None:
        with self._lock:
            if kv is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = kv["value"].decode()
