"""An executor's unpacked images (docs/images.md): each image a task names is fetched once
through the file cache (khala/executor/filecache.py: chunked, hash-checked, single flight),
unpacked once into a read-only directory, and bound by the sandbox as the step's `/`.

- Layout: `<root>/<sha256>/` the image's root filesystem (everything root's, no setuid bits,
  no device nodes: khala/images/tarball.py), `<root>/<sha256>.bytes` its size (written last:
  an image without it is incomplete), unpacks in progress in `<root>/tmp/`, `<root>/.lock`
  held (flock) by the one executor using the directory. The root is 0711: the sandbox user
  reaches an image by its name, never lists them.
- Atomic: an image is unpacked into tmp/ and renamed into place; a step never sees half of
  one. A crash leaves tmp/ (removed at the next start) or an image without its size (removed).
- Restart: the complete images on disk are kept (least recently used first by the
  modification time of their size file, which each use sets).
- Concurrency: one unpack per image however many slots want it at once.
- Bound: `image_bytes` (the files' bytes); images pinned by a running task are never evicted
  (khala/files/lru.py). The tar is held in the file cache only while it is unpacked.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
from dataclasses import dataclass

from khala.errors import ConfigError
from khala.executor.filecache import FileCache
from khala.executor.pinning import PinningCache
from khala.files.lru import Lru
from khala.files.refs import FileRef, valid_digest
from khala.images.tarball import unpack
from khala.model import ImageRef
from khala.sandbox.fstree import remove_tree

log = logging.getLogger(__name__)
SIZE_SUFFIX = ".bytes"


@dataclass
class ImageCounts:
    """What the images did since the executor started (its metrics)."""

    unpacks: int = 0
    hits: int = 0
    evictions: int = 0


class ImageRoots(PinningCache[ImageRef]):
    """Unpacked images by sha256; `holding` gives their root directories, and raises what
    fetching raised, InvalidInput for a tar that is refused."""

    def __init__(self, root: str, capacity: int, files: FileCache) -> None:
        self.root, self.capacity, self.files = root, capacity, files
        self.counts = ImageCounts()
        self._lru = Lru(capacity)
        self._lock = threading.Lock()
        self._flights: dict[str, threading.Lock] = {}
        self._tmp = os.path.join(root, "tmp")
        self._lock_fd = self._open()

    def _open(self) -> int:
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        os.chmod(self.root, 0o711)
        fd = os.open(os.path.join(self.root, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ConfigError(f"image directory {self.root} is in use by another executor: "
                              "give each executor its own image_dir") from exc
        remove_tree(self._tmp)
        os.makedirs(self._tmp, mode=0o700, exist_ok=True)
        found = []
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if not valid_digest(name):
                continue
            try:
                with open(path + SIZE_SUFFIX) as fh:
                    size = int(fh.read())
                found.append((os.stat(path + SIZE_SUFFIX).st_mtime_ns, name, size))
            except (OSError, ValueError):
                log.warning("image %s was not unpacked to its end; removing it", name)
                remove_tree(path)
        for _, sha256, size in sorted(found):
            self._lru.sizes[sha256] = size
            self._lru.total += size
        self._evict(self._lru.evictions())
        log.info("images %s: %d unpacked, %d bytes", self.root, len(found), self._lru.total)
        return fd

    def close(self) -> None:
        os.close(self._lock_fd)

    def path(self, sha256: str) -> str:
        return os.path.join(self.root, sha256)

    def _acquire(self, ref: ImageRef) -> str:
        if not valid_digest(ref.sha256):
            raise ConfigError(f"image {ref.name!r} reached this executor unresolved")
        with self._lock:
            flight = self._flights.setdefault(ref.sha256, threading.Lock())
        gone: list[str] = []
        with flight:  # one unpack of an image at a time; the others wait and find it
            with self._lock:
                hit = ref.sha256 in self._lru and os.path.isdir(self.path(ref.sha256))
                if hit:
                    self._lru.use(ref.sha256)
                    self._lru.pin(ref.sha256)
                    self.counts.hits += 1
                else:
                    self._lru.drop(ref.sha256)
            if not hit:
                size = self._unpack(ref)
                with self._lock:
                    gone = self._lru.add(ref.sha256, size)
                    self._lru.pin(ref.sha256)
        self._evict(gone)
        with contextlib.suppress(OSError):
            os.utime(self.path(ref.sha256) + SIZE_SUFFIX)  # its last use, for a restart
        return self.path(ref.sha256)

    def _unpack(self, ref: ImageRef) -> int:
        """Fetch the tar (pinned in the file cache meanwhile), unpack it into tmp/ and move
        it into place; its size last."""
        final = self.path(ref.sha256)
        remove_tree(final)  # a leftover the bookkeeping does not know
        work = tempfile.mkdtemp(prefix=f"{ref.sha256}.", dir=self._tmp)
        try:
            with self.files.holding([FileRef(ref.sha256, ref.size)]) as tars:
                size = unpack(tars[ref.sha256], work, self.capacity)
            with open(work + SIZE_SUFFIX, "w") as fh:
                fh.write(str(size))
            os.rename(work, final)
            os.rename(work + SIZE_SUFFIX, final + SIZE_SUFFIX)
        except BaseException:
            remove_tree(work)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(work + SIZE_SUFFIX)
            raise
        self.counts.unpacks += 1
        log.info("unpacked image %s:%d (%s, %d bytes)", ref.name, ref.resolved, ref.sha256,
                 size)
        return size

    def _evict(self, shas: list[str]) -> None:
        for sha256 in shas:
            with self._lock:
                flight = self._flights.get(sha256)
                if sha256 in self._lru or (flight is not None and flight.locked()):
                    continue  # used again meanwhile, or being unpacked again
                doomed = os.path.join(self._tmp, f"{sha256}.gone.{os.urandom(4).hex()}")
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path(sha256) + SIZE_SUFFIX)
                try:
                    os.rename(self.path(sha256), doomed)
                except FileNotFoundError:
                    continue
                self.counts.evictions += 1
            remove_tree(doomed)

    @property
    def size(self) -> int:
        with self._lock:
            return self._lru.total
