"""Steps run as another host user than the sandbox's own (a task's `run_uid`/`run_gid`, which
the operator allows: khala/rules/identity.py), and the host pid of a step's command.

The sandbox's own user has its generated /etc (`etc.make_etc`); another identity gets one of its
own, made on first use and kept while the sandbox lives. Whatever a caller passes, a backend
never runs a step as root: `check_identity` refuses uid 0 and gid 0.
"""

from __future__ import annotations

import os
import threading

from khala.errors import SandboxUnavailable
from khala.sandbox.etc import make_etc
from khala.sandbox.fstree import remove_tree


def check_identity(identity: tuple[int, int]) -> None:
    """SandboxUnavailable unless `identity` is an unprivileged (uid, gid)."""
    uid, gid = identity
    if uid <= 0 or gid <= 0:
        raise SandboxUnavailable(f"a step never runs as root (asked uid {uid}, gid {gid})")


class EtcDirs:
    """The generated /etc directories of the identities steps ran as (thread-safe)."""

    def __init__(self, home: str) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._dirs: dict[tuple[int, int], str] = {}

    def get(self, uid: int, gid: int) -> str:
        with self._lock:
            found = self._dirs.get((uid, gid))
            if found is None:
                found = self._dirs[(uid, gid)] = make_etc(uid, gid, self.home)
            return found

    def close(self) -> None:
        with self._lock:
            dirs, self._dirs = list(self._dirs.values()), {}
        for path in dirs:
            remove_tree(path)


def parent_of(pid: int) -> int | None:
    """The parent pid of `pid` (from /proc/PID/stat), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2:].split()  # the name may hold spaces and parentheses
    return int(fields[1]) if len(fields) > 1 else None


def grandchild(pid: int, candidates: list[int]) -> int | None:
    """The first of `candidates` (a step's processes) whose parent is a child of `pid`, or
    None while there is none."""
    parents = {p: parent_of(p) for p in candidates if p != pid}
    children = {p for p, parent in parents.items() if parent == pid}
    return next((p for p, parent in sorted(parents.items()) if parent in children), None)


def drop_privileges(identity: tuple[int, int]) -> None:
    """In a child before exec: become `identity` with no supplementary groups."""
    uid, gid = identity
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
