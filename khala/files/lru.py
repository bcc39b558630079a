"""The bookkeeping of an executor's file cache: entries in least-recently-used order, bounded by
bytes, some pinned (in use by a running task: never evicted). Pure: the files themselves are
khala/executor/filecache.py's.

The bound is kept by evicting unpinned entries, oldest use first. Pinned entries are never
evicted, so while the tasks that pin them run the cache may hold more than its bound; it comes
back under the bound as they are released and newer entries arrive.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class Lru:
    capacity: int  # bytes
    sizes: OrderedDict[str, int] = field(default_factory=OrderedDict)  # oldest use first
    pins: dict[str, int] = field(default_factory=dict)  # key → tasks holding it
    total: int = 0

    def __contains__(self, key: str) -> bool:
        return key in self.sizes

    def use(self, key: str) -> None:
        """`key` (present) is now the most recently used."""
        self.sizes.move_to_end(key)

    def add(self, key: str, size: int) -> list[str]:
        """Add (or refresh) `key` as the most recently used; returns the keys to evict so that
        the unpinned entries fit the bound (never `key` itself, nor a pinned one)."""
        self.drop(key)
        self.sizes[key] = size
        self.total += size
        return self.evictions(keep=key)

    def evictions(self, keep: str = "") -> list[str]:
        """Remove and return the oldest unpinned entries while the total exceeds the bound."""
        gone: list[str] = []
        for key in list(self.sizes):
            if self.total <= self.capacity:
                break
            if key == keep or self.pins.get(key):
                continue
            self.total -= self.sizes.pop(key)
            gone.append(key)
        return gone

    def drop(self, key: str) -> None:
        size = self.sizes.pop(key, None)
        if size is not None:
            self.total -= size

    def pin(self, key: str) -> None:
        self.pins[key] = self.pins.get(key, 0) + 1

    def unpin(self, key: str) -> list[str]:
        """One holder less; returns what may be evicted now."""
        left = self.pins.get(key, 0) - 1
        if left > 0:
            self.pins[key] = left
        else:
            self.pins.pop(key, None)
        return self.evictions()
