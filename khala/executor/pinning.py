"""What the executor's two disk caches (cached files, unpacked images) share: a task holds the
entries it needs pinned while it runs, and what its release leaves evictable goes then."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from khala.files.lru import Lru


class Digested(Protocol):
    @property
    def sha256(self) -> str: ...


Ref = TypeVar("Ref", bound=Digested)


class PinningCache(Generic[Ref]):
    """A cache of entries named by their sha256, kept in an Lru under a lock; a subclass makes
    an entry present and pinned (`_acquire`) and removes evicted ones (`_evict`)."""

    _lock: threading.Lock
    _lru: Lru

    def _acquire(self, ref: Ref) -> str:
        raise NotImplementedError

    def _evict(self, shas: list[str]) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def holding(self, refs: list[Ref]) -> Iterator[dict[str, str]]:
        """The entries `refs` name, present and pinned while the block runs: sha256 → path.
        Raises what making one present raised; those acquired before it are released."""
        held: list[str] = []
        try:
            paths = {}
            for ref in {r.sha256: r for r in refs}.values():
                paths[ref.sha256] = self._acquire(ref)
                held.append(ref.sha256)
            yield paths
        finally:
            with self._lock:
                gone = [g for sha in held for g in self._lru.unpin(sha)]
            self._evict(gone)
