"""Work dirs of runs: made fresh, bounded, removed whatever they hold; and the careful copy of
a tree a sandboxed step built (regular files, directories and symlinks only, bounded)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile

from khala.config import ExecutorSettings
from khala.sandbox.base import Sandbox
from khala.sandbox.fstree import remove_tree
from khala.sandbox.workarea import PREFIX as WORKDIR_PREFIX

log = logging.getLogger(__name__)

MAX_DEPTH = 64
MAX_ENTRIES = 20_000
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class CopyLimit(Exception):
    """The tree is deeper, larger or has more entries than a copy may take."""


def make_workdir(task_id: str, settings: ExecutorSettings, tag: str = "") -> str:
    base = settings.work_dir or None
    if base:
        os.makedirs(base, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", task_id or "task")[:40] + tag
    return tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{name}-", dir=base)


def remove_workdir(workdir: str, sandbox: Sandbox) -> None:
    """Unmount the work area and remove the work dir; never raises (a failure is logged)."""
    for action in (sandbox.close_workdir, remove_tree):
        try:
            action(workdir)
        except Exception:
            log.exception("cannot clean up a work dir (%s)", getattr(action, "__name__", ""))


def _copy_file(src_dir: str, name: str, dst: str, budget: int) -> int:
    fd = os.open(os.path.join(src_dir, name), READ_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return 0
        if info.st_size > budget:
            raise CopyLimit("the files are larger than the work area")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as src, open(dst, "xb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(dst, 0o755 if info.st_mode & 0o111 else 0o644)
        return info.st_size
    finally:
        os.close(fd)


def copy_tree(src: str, dst: str, budget: int, skip: tuple[str, ...] = ()) -> None:
    """Copy the contents of `src` into the existing directory `dst`: regular files (modes
    0644/0755), directories and symlinks (as links); FIFOs, sockets and devices are left out,
    and so are the top-level names in `skip`. CopyLimit past `budget` bytes, MAX_DEPTH levels
    or MAX_ENTRIES entries."""
    stack: list[tuple[str, str, int]] = [(src, dst, 0)]
    entries = 0
    while stack:
        here, there, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CopyLimit(f"the tree is deeper than {MAX_DEPTH} levels")
        with os.scandir(here) as scan:
            items = list(scan)
        for item in items:
            entries += 1
            if entries > MAX_ENTRIES:
                raise CopyLimit(f"the tree has more than {MAX_ENTRIES} entries")
            if depth == 0 and item.name in skip:
                continue
            target = os.path.join(there, item.name)
            if item.is_symlink():
                os.symlink(os.readlink(item.path), target)
            elif item.is_dir(follow_symlinks=False):
                os.mkdir(target, 0o755)
                stack.append((item.path, target, depth + 1))
            elif item.is_file(follow_symlinks=False):
                budget -= _copy_file(here, item.name, target, budget)
