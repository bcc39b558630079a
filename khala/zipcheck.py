"""Zip archives from strangers: check them, extract them safely, and build one-file zips.

A task's compile source and execute data are zip archives. Before any of it touches a disk we
check every entry's header (names, types, sizes, count); extraction then creates only regular
files and directories under the destination, never follows a symlink, and counts the bytes it
really decompresses, so a lying header cannot make it write more than the limit.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import re
import stat
import time
import zipfile
import zlib

from khala.errors import InvalidInput

CHUNK = 64 * 1024
DRIVE_RE = re.compile(r"^[A-Za-z]:")
UNIX_SYSTEM = 3  # ZipInfo.create_system of archives made on Unix
# OS errors that extraction hits only because of the archive's own layout.
LAYOUT_ERRNOS = frozenset(
    {errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}
)
# OS errors of a full destination filesystem (the run's bounded work area).
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
COMPRESSIONS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
OPEN_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError, NotImplementedError)


def entry_parts(name: str) -> list[str]:
    """The path components of an entry name; raises InvalidInput for a name that could escape.

    Rejected: empty names, absolute paths, `..` components, backslashes (Windows separators),
    drive letters and NUL bytes. `.` and empty components are dropped."""
    if not name:
        raise InvalidInput("a zip entry has an empty name")
    if "\x00" in name:
        raise InvalidInput(f"zip entry {name!r} has a NUL byte in its name")
    if "\\" in name:
        raise InvalidInput(f"zip entry {name!r} has a backslash in its name")
    if name.startswith("/"):
        raise InvalidInput(f"zip entry {name!r} has an absolute path")
    if DRIVE_RE.match(name):
        raise InvalidInput(f"zip entry {name!r} starts with a drive letter")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"zip entry {name!r} has a '..' component")
    return parts


def _check_type(info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    if info.create_system != UNIX_SYSTEM or stat.S_IFMT(mode) == 0:
        return  # no Unix type recorded: a plain file or directory
    if stat.S_ISLNK(mode):
        raise InvalidInput(f"zip entry {info.filename!r} is a symlink")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InvalidInput(f"zip entry {info.filename!r} is a device or special file")
    if stat.S_ISDIR(mode) and not info.is_dir():
        raise InvalidInput(f"zip entry {info.filename!r} is a directory without a trailing '/'")


def _check_entry(info: zipfile.ZipInfo) -> None:
    entry_parts(info.filename)
    _check_type(info)
    if info.flag_bits & 0x1:
        raise InvalidInput(f"zip entry {info.filename!r} is encrypted")
    if info.compress_type not in COMPRESSIONS:
        raise InvalidInput(f"zip entry {info.filename!r} uses an unsupported compression method")
    if info.file_size < 0 or info.compress_size < 0:
        raise InvalidInput(f"zip entry {info.filename!r} has a negative size")


def _open(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except OPEN_ERRORS as exc:
        raise InvalidInput(f"not a valid zip archive: {exc}") from exc


def _check_open(archive: zipfile.ZipFile, max_bytes: int, max_files: int) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > max_files:
        raise InvalidInput(f"zip archive has {len(infos)} entries, more than the limit {max_files}")
    total = 0
    for info in infos:
        _check_entry(info)
        total += info.file_size
    if total > max_bytes:
        raise InvalidInput(f"zip archive unpacks to {total} bytes, more than the limit {max_bytes}")
    return infos


def check_archive(archive: zipfile.ZipFile, max_bytes: int, max_files: int
                  ) -> list[zipfile.ZipInfo]:
    """The entries of an open archive, each checked (names, types, encryption, compression),
    at most `max_files` of them unpacking to at most `max_bytes` as their headers say.
    Raises InvalidInput."""
    return _check_open(archive, max_bytes, max_files)


def check_zip(data: bytes, max_bytes: int, max_files: int) -> None:
    """Raise InvalidInput unless `data` is empty or a zip archive that is safe to extract."""
    if not data:
        return
    with _open(data) as archive:
        _check_open(archive, max_bytes, max_files)


# ----------------------------------------------------------------------------- extraction


class ExtractLimit(InvalidInput):
    """The archive is well formed but does not fit the run: too slow or too large to unpack."""


def _mkdir_open(parent_fd: int, name: str) -> int:
    """Create (if needed) and open directory `name` inside `parent_fd`, never via a symlink."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    return os.open(name, DIR_FLAGS, dir_fd=parent_fd)


class _Tree:
    """The directories extraction has made, as a trie of names: an entry's parent is found in
    one walk of its own components and opened with one call, so extraction is linear in the
    archive's names (no reopening of every ancestor per entry). Only directories and regular
    files are ever created, so a path below the root cannot cross a symlink."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.children: dict[str, dict] = {}  # type: ignore[type-arg]

    def open_dir(self, parts: list[str]) -> int:
        """An fd of the directory `parts` under the root, creating what is missing."""
        node, known = self.children, 0
        while known < len(parts) and parts[known] in node:
            node = node[parts[known]]
            known += 1
        path = "/".join(parts[:known]) or "."
        fd = os.open(path, DIR_FLAGS, dir_fd=self.root_fd)
        try:
            for part in parts[known:]:
                child = _mkdir_open(fd, part)
                os.close(fd)
                fd = child
                node = node.setdefault(part, {})
        except BaseException:
            os.close(fd)
            raise
        return fd


def _write_file(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dir_fd: int, name: str,
                budget: int, deadline: float = math.inf) -> int:
    """Write one entry; return the bytes written. Raises InvalidInput past `budget` bytes and
    ExtractLimit past `deadline`."""
    executable = info.create_system == UNIX_SYSTEM and (info.external_attr >> 16) & 0o111
    mode = 0o755 if executable else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, mode, dir_fd=dir_fd)
    written = 0
    try:
        with archive.open(info) as source:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > budget:
                    raise InvalidInput("zip archive unpacks to more bytes than the limit")
                _check_deadline(deadline)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return written


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise ExtractLimit("zip archive takes too long to unpack")


def _extract_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, tree: _Tree, budget: int,
                   deadline: float) -> int:
    parts = entry_parts(info.filename)
    if not parts:
        return 0
    dirs, last = (parts, None) if info.is_dir() else (parts[:-1], parts[-1])
    fd = tree.open_dir(dirs)
    try:
        if last is None:
            return 0
        return _write_file(archive, info, fd, last, budget, deadline)
    finally:
        os.close(fd)


def extract_zip(data: bytes, dest: str, max_bytes: int, max_files: int,
                seconds: float | None = None) -> None:
    """Check `data`, then extract its regular files and directories under `dest` (which must
    exist) within `seconds`. Raises InvalidInput for an unsafe archive or one that really
    unpacks past max_bytes; ExtractLimit when unpacking takes longer than `seconds` or the
    destination's filesystem is full."""
    if not data:
        return
    deadline = time.monotonic() + seconds if seconds is not None else math.inf
    with _open(data) as archive:
        infos = _check_open(archive, max_bytes, max_files)
        root_fd = os.open(dest, DIR_FLAGS)
        try:
            total = 0
            tree = _Tree(root_fd)
            for info in infos:
                _check_deadline(deadline)
                total += _extract_entry(archive, info, tree, max_bytes - total, deadline)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise InvalidInput(f"zip archive cannot be extracted: {exc}") from exc
        except OSError as exc:
            if exc.errno in FULL_ERRNOS:
                raise ExtractLimit("zip archive does not fit in the work area") from exc
            if exc.errno in LAYOUT_ERRNOS:
                raise InvalidInput(f"zip archive cannot be extracted: {exc}") from exc
            raise
        finally:
            os.close(root_fd)


# ----------------------------------------------------------------------------- building


def make_zip(name: str, content: str) -> bytes:
    """A zip archive holding one file `name` with `content` (UTF-8). Raises InvalidInput for a
    name that is empty, absolute, names a directory or has a `..` component."""
    if name.endswith("/") or not entry_parts(name):
        raise InvalidInput(f"{name!r} is not a valid file name")
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = UNIX_SYSTEM
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, content.encode("utf-8"))
    return buffer.getvalue()


def make_zip_files(files: list[tuple[str, bytes]]) -> bytes:
    """A zip of several files (name, content), deterministic: the same files give the same
    bytes. Raises InvalidInput for a bad or repeated name."""
    buffer = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files:
            if name.endswith("/") or not entry_parts(name):
                raise InvalidInput(f"{name!r} is not a valid file name")
            if name in seen:
                raise InvalidInput(f"file {name!r} is given twice")
            seen.add(name)
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = UNIX_SYSTEM
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()
