"""Walking directory trees a stranger built: iteratively, by file descriptor, never following a
symlink, with two directory descriptors open at most.

A step can leave a tree thousands of levels deep behind (deeper than Python's recursion limit
and than PATH_MAX); `shutil.rmtree` and `os.walk` recurse and raise RecursionError on such
trees. Here the walk keeps an explicit stack of names and climbs back with `..`, checking that
each parent is the directory it left (device and inode), so a moved directory stops the walk
instead of leading it astray.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Visit = Callable[[int, str], None]  # (directory fd, entry name)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _scan(fd: int, on_file: Visit) -> list[str]:
    """Call `on_file` for each non-directory entry of `fd`; return the subdirectory names."""
    subdirs = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                on_file(fd, entry.name)
    return subdirs


def walk_bottom_up(top: str, on_file: Visit, on_dir: Visit) -> None:
    """Visit every entry under `top` (not `top` itself): `on_file(dir_fd, name)` for files,
    symlinks and others, `on_dir(parent_fd, name)` for each directory after its contents.
    Raises OSError if `top` is no directory or the tree changes under the walk."""
    fd = os.open(top, DIR_FLAGS)
    # one level per open directory: (subdirectories still to visit, name in parent, parent id)
    levels: list[tuple[list[str], str, tuple[int, int]]] = [(_scan(fd, on_file), "", (0, 0))]
    try:
        while levels:
            pending, name, parent = levels[-1]
            if pending:
                child = pending.pop()
                here = _identity(fd)
                try:
                    child_fd = os.open(child, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue
                os.close(fd)
                fd = child_fd
                levels.append((_scan(fd, on_file), child, here))
                continue
            levels.pop()
            if not levels:
                break
            up = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            if _identity(fd) != parent:
                raise OSError(f"directory {name!r} moved during the walk")
            on_dir(fd, name)
    finally:
        os.close(fd)


def _unlink(dir_fd: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)


def _rmdir(dir_fd: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=dir_fd)


def remove_tree(path: str) -> None:
    """Remove `path` and everything under it, however deep; a missing path is fine."""
    try:
        walk_bottom_up(path, _unlink, _rmdir)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):  # a file or a symlink: unlink it
            raise
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)


def chown_tree(path: str, uid: int, gid: int) -> None:
    """Give everything under `path` (not `path` itself) to uid/gid, never following symlinks."""

    def give(dir_fd: int, name: str) -> None:
        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    walk_bottom_up(path, give, give)
