"""The compile cache's keys and its bounded LRU index. Pure: the files live in
khala/executor/compile_cache.py.

A key is the SHA-256 of everything the compile step's result depends on: the source tree (each
file's path, executable bit and content hash), the preset's name, its resolved compile command,
its declared outputs and the tool's version string. An entry holds only the declared outputs,
each with its SHA-256, so a file changed on disk is found out when it is used.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

KEY_VERSION = 1  # bump when the key's ingredients change: old entries then never match


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative, "/"-separated
    executable: bool
    sha256: str


def cache_key(files: Iterable[SourceFile], language: str, command: str,
              outputs: Iterable[str], version: str) -> str:
    """The entry key of compiling `files` with `command` (preset `language` at `version`)."""
    doc = {
        "v": KEY_VERSION,
        "language": language,
        "command": command,
        "outputs": list(outputs),
        "version": version,
        "files": sorted([f.path, f.executable, f.sha256] for f in files),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@dataclass
class Entry:
    key: str
    files: dict[str, tuple[str, bool]]  # name → (sha256, executable)
    size: int  # bytes of all files


@dataclass
class Index:
    """Entries in least-recently-used order, bounded by `capacity` bytes in total."""

    capacity: int
    entries: OrderedDict[str, Entry] = field(default_factory=OrderedDict)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries.values())

    def get(self, key: str) -> Entry | None:
        """The entry (now the most recently used), or None."""
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def fits(self, size: int) -> bool:
        return size <= self.capacity

    def add(self, entry: Entry) -> list[str]:
        """Add `entry` as the most recently used; returns the keys evicted to stay within the
        capacity (the new entry's own key when it alone is too large)."""
        if not self.fits(entry.size):
            return [entry.key]
        self.entries[entry.key] = entry
        self.entries.move_to_end(entry.key)
        evicted: list[str] = []
        total = self.size
        while total > self.capacity:
            old_key, old = next(iter(self.entries.items()))
            del self.entries[old_key]
            evicted.append(old_key)
            total -= old.size
        return evicted

    def drop(self, key: str) -> None:
        self.entries.pop(key, None)
