"""An executor's cache of stored files (problems' tests, jury programs, version specs): fetched
from the judicators a chunk at a time, hash-checked, kept on disk under `file_cache_dir`,
bounded by `file_cache_bytes` (least recently used first out), handed to runs without a copy
(Sandbox.place_file).

- Layout: `<root>/objects/ab/<sha256>` (0444, the root 0700: never mounted into a run as a
  whole), fetches in progress in `<root>/tmp/`, `<root>/.lock` held (flock) by the one executor
  using the directory.
- Restart: the entries on disk are the cache (oldest use first by modification time, which each
  use sets); fetches a dead executor left in tmp/ are removed.
- Trust: a file is hashed before its first use in this process, and again whenever its
  (inode, size, ctime) changed since it was last hashed (a write, a chmod, a replacement: none
  can keep the ctime); a missing or corrupt file is fetched again.
- Concurrency: one fetch per file however many slots want it at once (the others wait for it).
- Bound: files pinned by a running task are never evicted; while they are, the cache may hold
  more than its bound (khala/files/lru.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from khala.errors import ConfigError
from khala.executor.pinning import PinningCache
from khala.files.lru import Lru
from khala.files.refs import CHUNK, EMPTY, FileRef, valid_digest
from khala.sandbox.fstree import remove_tree

log = logging.getLogger(__name__)

#: Downloads `ref` into the open file (raises on failure; khala.files.transfer.receive).
Fetch = Callable[[FileRef, BinaryIO], None]
Stamp = tuple[int, int, int]  # inode, size, ctime_ns


@dataclass
class CacheCounts:
    """What the cache did since the executor started (its metrics)."""

    fetches: int = 0
    fetched_bytes: int = 0
    hits: int = 0
    refetches: int = 0  # entries found corrupt or missing and fetched again
    evictions: int = 0


class _Flight:
    """A fetch under way that other slots wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


def _stamp(info: os.stat_result) -> Stamp:
    return info.st_ino, info.st_size, info.st_ctime_ns


class FileCache(PinningCache[FileRef]):
    """Cached files by sha256; `holding` gives their paths, checked, and raises what a fetch
    raised (the judicators unreachable, a file they lack)."""

    def __init__(self, root: str, capacity: int, fetch: Fetch | None = None) -> None:
        self.root = root
        self.fetch = fetch  # set by the node once its judicator client exists
        self.counts = CacheCounts()
        self._lru = Lru(capacity)
        self._verified: dict[str, Stamp] = {}
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._objects = os.path.join(root, "objects")
        self._tmp = os.path.join(root, "tmp")
        self._lock_fd = self._open(root)

    # ------------------------------------------------------------------ start

    def _open(self, root: str) -> int:
        os.makedirs(root, mode=0o700, exist_ok=True)
        os.chmod(root, 0o700)
        fd = os.open(os.path.join(root, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ConfigError(f"file cache {root} is in use by another executor: give each "
                              "executor its own file_cache_dir") from exc
        remove_tree(self._tmp)
        os.makedirs(self._tmp, mode=0o700, exist_ok=True)
        os.makedirs(self._objects, mode=0o700, exist_ok=True)
        found = []
        for entry in self._entries():
            info = os.stat(entry)
            found.append((info.st_mtime_ns, os.path.basename(entry), info.st_size))
        for _, sha256, size in sorted(found):
            if valid_digest(sha256):
                self._lru.sizes[sha256] = size
                self._lru.total += size
        self._evict(self._lru.evictions())
        log.info("file cache %s: %d file(s), %d bytes", root, len(found), self._lru.total)
        return fd

    def _entries(self) -> Iterator[str]:
        for shard in os.listdir(self._objects):
            folder = os.path.join(self._objects, shard)
            if os.path.isdir(folder):
                for name in os.listdir(folder):
                    yield os.path.join(folder, name)

    def close(self) -> None:
        os.close(self._lock_fd)

    def path(self, sha256: str) -> str:
        return os.path.join(self._objects, sha256[:2], sha256)

    # ------------------------------------------------------------------ use

    def _acquire(self, ref: FileRef) -> str:
        """Make `ref` present and checked, and pin it."""
        while True:
            with self._lock:
                flight = self._flights.get(ref.sha256)
                if flight is None:
                    if self._trusted(ref):
                        self._lru.use(ref.sha256)
                        self._lru.pin(ref.sha256)
                        self.counts.hits += 1
                        return self.path(ref.sha256)
                    flight = self._flights[ref.sha256] = _Flight()
                    break
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
        try:
            self._ensure(ref)
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(ref.sha256, None)
            flight.done.set()
        return self.path(ref.sha256)

    def _trusted(self, ref: FileRef) -> bool:
        """In the cache and unchanged since it was last hashed (under the lock)."""
        if ref.sha256 not in self._lru:
            return False
        try:
            info = os.stat(self.path(ref.sha256))
        except FileNotFoundError:
            return False
        return self._verified.get(ref.sha256) == _stamp(info)

    def _ensure(self, ref: FileRef) -> None:
        """Hash the file on disk, or fetch it (again) when it is missing or corrupt; then
        record and pin it. Runs outside the lock, as the only one working on `ref`."""
        path = self.path(ref.sha256)
        known = ref.sha256 in self._lru
        ok = os.path.exists(path) and self._hash_matches(path, ref)
        if not ok:
            if known or os.path.exists(path):
                log.warning("cached file %s is missing or corrupt; fetching it again",
                            ref.sha256)
                self.counts.refetches += 1
            self._fetch(ref, path)
        os.utime(path)  # its last use: the order of eviction after a restart
        info = os.stat(path)
        with self._lock:
            self._verified[ref.sha256] = _stamp(info)
            gone = self._lru.add(ref.sha256, info.st_size)
            self._lru.pin(ref.sha256)
        self._evict(gone)

    @staticmethod
    def _hash_matches(path: str, ref: FileRef) -> bool:
        hasher, size = hashlib.sha256(), 0
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
        except OSError:
            return False
        return size == ref.size and hasher.hexdigest() == ref.sha256

    def _fetch(self, ref: FileRef, path: str) -> None:
        fd, tmp = _temp(self._tmp, ref.sha256)
        try:
            with os.fdopen(fd, "wb") as fh:
                if ref.sha256 != EMPTY:
                    if self.fetch is None:
                        raise ConfigError("the file cache has no judicator to fetch from")
                    self.fetch(ref, fh)
            if not self._hash_matches(tmp, ref):  # what the fetch wrote, as it lies on disk
                raise OSError(f"file {ref.sha256}: the bytes written are not the file's")
            os.chmod(tmp, 0o444)
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self.counts.fetches += 1
        self.counts.fetched_bytes += ref.size
        log.info("fetched file %s (%d bytes)", ref.sha256, ref.size)

    def _evict(self, shas: list[str]) -> None:
        for sha256 in shas:
            with self._lock:  # unlinked under the lock: a new fetch of it cannot interleave
                if sha256 in self._lru or sha256 in self._flights:
                    continue  # used again meanwhile
                self._verified.pop(sha256, None)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path(sha256))
                self.counts.evictions += 1

    @property
    def size(self) -> int:
        with self._lock:
            return self._lru.total


def _temp(folder: str, name: str) -> tuple[int, str]:
    path = os.path.join(folder, f"{name}.{os.urandom(6).hex()}")
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
