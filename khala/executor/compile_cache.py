"""The compile cache's files: one directory per entry under the cache root, invisible to the
sandbox (the root is 0700, owned by the executor, and never mounted into a run).

Poisoning is guarded on both sides:
- in: only the compile step's declared outputs are taken, each only if it is a regular file at
  the top of the build dir (opened without following symlinks, no FIFOs or devices), copied —
  never linked — and hashed while copied; entries are written to a temporary directory and
  renamed into place, files 0444 and directories 0555;
- out: every file's hash is checked again each time the entry is used, and a file that changed
  (or is not a plain file any more) drops the whole entry, so the program is compiled afresh.
Runs only ever get copies, so a program that rewrites its own binary changes its copy alone.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading

from khala.judging.cache import Entry, Index, SourceFile
from khala.sandbox.fstree import remove_tree

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CHUNK = 1 << 20
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class OutputError(Exception):
    """A declared output is missing or is not a plain file."""


def _copy_hashed(src_fd: int, dst_path: str, budget: int) -> tuple[str, int]:
    """Copy from an open file to a new file; returns (sha256, size). OutputError past budget."""
    digest = hashlib.sha256()
    size = 0
    with open(dst_path, "xb") as out:
        while chunk := os.read(src_fd, CHUNK):
            size += len(chunk)
            if size > budget:
                raise OutputError("the compile step's outputs are larger than the cache allows")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def _open_regular(dir_fd: int, name: str) -> tuple[int, os.stat_result]:
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise OutputError(f"declared output {name!r} cannot be opened as a file") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OutputError(f"declared output {name!r} is not a regular file")
    os.set_blocking(fd, True)
    return fd, info


def collect_outputs(build_dir: str, patterns: tuple[str, ...], dest: str, budget: int
                    ) -> dict[str, tuple[str, bool]]:
    """Copy the top-level files of `build_dir` matching `patterns` into the new directory
    `dest`; returns name → (sha256, executable). OutputError when a pattern matches nothing or
    a match is no plain file."""
    files: dict[str, tuple[str, bool]] = {}
    dir_fd = os.open(build_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        names = sorted(os.listdir(dir_fd))
        for pattern in patterns:
            matches = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not matches:
                raise OutputError(f"the compile step made no {pattern!r}")
            for name in matches:
                fd, info = _open_regular(dir_fd, name)
                try:
                    digest, size = _copy_hashed(fd, os.path.join(dest, name), budget)
                finally:
                    os.close(fd)
                budget -= size
                files[name] = (digest, bool(info.st_mode & 0o111))
    finally:
        os.close(dir_fd)
    return files


def source_files(root: str) -> list[SourceFile]:
    """The source tree just unpacked into `root` (before anything ran there), for the key.
    Iterative: a zip may hold a tree deeper than Python's recursion limit."""
    found: list[SourceFile] = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(os.path.join(root, rel_dir)) as scan:
            items = sorted(scan, key=lambda e: e.name)
        for item in items:
            rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
            if item.is_symlink():
                found.append(SourceFile(rel, False, "symlink:" + os.readlink(item.path)))
            elif item.is_dir(follow_symlinks=False):
                stack.append(rel)
            elif item.is_file(follow_symlinks=False):
                with open(item.path, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
                mode = item.stat(follow_symlinks=False).st_mode
                found.append(SourceFile(rel, bool(mode & 0o111), digest))
    return found


def copy_entry(path: str, files: dict[str, tuple[str, bool]], dest: str,
               extra: tuple[str, ...] = (MANIFEST,)) -> bool:
    """Copy the entry at `path` into the directory `dest`, checking each file's hash on the
    way; False (with `dest` left partly filled) when the entry is not exactly `files` (and
    `extra`)."""
    try:
        if sorted(os.listdir(path)) != sorted([*files, *extra]):
            return False
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for name, (digest, executable) in files.items():
                fd, _ = _open_regular(dir_fd, name)
                try:
                    target = os.path.join(dest, name)
                    got, _ = _copy_hashed(fd, target, 1 << 40)
                finally:
                    os.close(fd)
                if got != digest:
                    return False
                os.chmod(target, 0o755 if executable else 0o644)
        finally:
            os.close(dir_fd)
    except (OSError, OutputError):
        return False
    return True


class CompileCache:
    """Entries under `root`, bounded to `capacity` bytes, least recently used evicted first.
    Thread-safe. Capacity 0: off (nothing is kept, every lookup misses)."""

    def __init__(self, root: str, capacity: int) -> None:
        self.root = root
        self.index = Index(capacity)
        self._lock = threading.Lock()
        if capacity > 0:
            os.makedirs(root, exist_ok=True)
            os.chmod(root, 0o700)
            self._load()

    @property
    def enabled(self) -> bool:
        return self.index.capacity > 0

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def _load(self) -> None:
        """Entries left by an earlier run (oldest manifest first); unreadable ones are removed."""
        found = []
        for name in os.listdir(self.root):
            path = self._path(name)
            try:
                with open(os.path.join(path, MANIFEST)) as fh:
                    doc = json.load(fh)
                files = {n: (str(d), bool(x)) for n, (d, x) in doc["files"].items()}
                found.append((os.stat(path).st_mtime, Entry(name, files, int(doc["size"]))))
            except (OSError, ValueError, KeyError, TypeError):
                self._remove(name)
        for _, entry in sorted(found, key=lambda pair: pair[0]):
            for key in self.index.add(entry):
                self._remove(key)

    def _remove(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(OSError):
            for here, dirs, _ in os.walk(path):
                os.chmod(here, 0o700)
                for d in dirs:
                    os.chmod(os.path.join(here, d), 0o700)
        remove_tree(path)

    def fetch(self, key: str, dest: str) -> bool:
        """Copy the entry of `key` into the directory `dest` after checking every file; False
        on a miss. An entry that fails the check is removed (and `dest` emptied)."""
        if not self.enabled:
            return False
        with self._lock:
            entry = self.index.get(key)
            if entry is None:
                return False
            path = self._path(key)
            if copy_entry(path, entry.files, dest):
                with contextlib.suppress(OSError):
                    os.utime(path)
                return True
            log.warning("compile cache entry %s changed on disk: dropped", key[:16])
            self.index.drop(key)
            self._remove(key)
        for name in os.listdir(dest):
            remove_tree(os.path.join(dest, name))
        return False

    def store(self, key: str, build_dir: str, outputs: tuple[str, ...], dest: str,
              budget: int = 1 << 40) -> None:
        """Copy the declared `outputs` of `build_dir` into the directory `dest` and keep them as
        the entry of `key` (when the cache is on and they fit). OutputError when an output is
        missing, no plain file, or the outputs exceed `budget` bytes."""
        tmp = tempfile.mkdtemp(prefix=".new-", dir=self.root if self.enabled else None)
        try:
            files = collect_outputs(build_dir, outputs, tmp, budget)
            size = sum(os.path.getsize(os.path.join(tmp, n)) for n in files)
            if not copy_entry(tmp, files, dest, extra=()):
                raise OutputError("the compile step's outputs changed while being copied")
            if not self.enabled:
                return
            with open(os.path.join(tmp, MANIFEST), "w") as fh:
                json.dump({"files": files, "size": size}, fh)
            for name in os.listdir(tmp):
                os.chmod(os.path.join(tmp, name), 0o444)
            os.chmod(tmp, 0o555)
            tmp = self._install(key, tmp, Entry(key, files, size))
        finally:
            if tmp:
                os.chmod(tmp, 0o700)
                remove_tree(tmp)

    def _install(self, key: str, tmp: str, entry: Entry) -> str:
        """Rename `tmp` into place as `key`'s entry; returns what is left to remove ("" when
        `tmp` became the entry)."""
        with self._lock:
            if key in self.index.entries:  # compiled meanwhile by another task: keep that one
                return tmp
            evicted = self.index.add(entry)
            if key in evicted:  # too large to keep
                return tmp
            os.rename(tmp, self._path(key))
            for old in evicted:
                self._remove(old)
            return ""

