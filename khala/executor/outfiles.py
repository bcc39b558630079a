"""Files out (`Execute.outputs`, go-judge's copyOut): the files a run wrote that its task asks
back, read from the run's work dir after it ended, byte for byte, within a budget.

The work dir was the sandbox's: every path component is opened without following symlinks (a
run may have put a symlink to a host file where a file was expected), and only a regular file
is read. A file larger than what is left of the budget is not returned: the run then went past
its output limit (`over`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from khala.model import OutputFile

CHUNK = 1 << 20
MISSING = "missing"
NOT_REGULAR = "not a regular file"
TOO_LARGE = "larger than the output limit"
UNREADABLE = "could not be read"


@dataclass
class Collected:
    files: list[OutputFile] = field(default_factory=list)
    over: bool = False  # a file did not fit the budget: the run's output limit was passed

    @property
    def size(self) -> int:
        return sum(len(f.content) for f in self.files)


def _open_under(root_fd: int, name: str) -> int:
    """An fd of `name` (relative, "/"-separated) under the directory `root_fd`, no component
    followed if it is a symlink. Raises OSError (ELOOP/ENOTDIR for a symlink on the way)."""
    parts = name.split("/")
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                       dir_fd=fd)
    finally:
        os.close(fd)


def _read(fd: int, room: int) -> bytes | None:
    """At most `room` bytes of the open file; None when it holds more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, min(CHUNK, room - size + 1))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > room:
            return None
        chunks.append(chunk)


def _one(root_fd: int, name: str, room: int) -> tuple[OutputFile, bool]:
    """The file `name` and whether it went past `room`."""
    try:
        fd = _open_under(root_fd, name)
    except FileNotFoundError:
        return OutputFile(name=name, error=MISSING), False
    except OSError:  # a symlink or a non-directory on the way
        return OutputFile(name=name, error=NOT_REGULAR), False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return OutputFile(name=name, error=NOT_REGULAR), False
        if info.st_size > room:
            return OutputFile(name=name, size=info.st_size, error=TOO_LARGE), True
        os.set_blocking(fd, True)
        content = _read(fd, room)
    except OSError:
        return OutputFile(name=name, error=UNREADABLE), False
    finally:
        os.close(fd)
    if content is None:  # grew while read (a process of the run outlived it?)
        return OutputFile(name=name, size=info.st_size, error=TOO_LARGE), True
    return OutputFile(name=name, content=content, size=len(content)), False


def collect(workdir: str, names: list[str], budget: int) -> Collected:
    """The files `names` of the ended run in `workdir`, together at most `budget` bytes."""
    found = Collected()
    if not names:
        return found
    try:
        root_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        found.files = [OutputFile(name=n, error=UNREADABLE) for n in names]
        return found
    try:
        left = budget
        for name in names:
            item, over = _one(root_fd, name, left)
            found.files.append(item)
            found.over = found.over or over
            left -= len(item.content)
    finally:
        os.close(root_fd)
    return found


def write_for_checker(files: list[OutputFile], directory: str) -> None:
    """Lay the returned files out under `directory` (created) for a checker to read."""
    os.makedirs(directory, 0o755, exist_ok=True)
    for item in files:
        if item.error:
            continue
        path = os.path.join(directory, item.name)
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(item.content)
