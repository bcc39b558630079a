"""What a sandboxed run could leave behind on the host: processes, cgroups, mounts, work dirs.

The probe looks only at what the run under test can have made, never at the whole machine:
other test processes, `make run` or another engineer's executor mount work areas and start
sandboxes at the same time, and those are not this run's leaks. In scope are

- mounts at or under the probe's roots (the run's work dir root: where work areas are mounted),
- entries of the work dir root,
- processes descended from this test process, and processes in this process's run cgroups
  (`run-<our pid>-…`, which catches one that escaped the tree by being reparented to init),
- run cgroups of this process (`run-<our pid>-…`).

Anything of those that exists when the probe is made is not counted — also run cgroups named
after our pid that a dead process of the same pid left behind (pids are reused; the cpuacct and
pids hierarchies are shared by the whole machine). A warm pool's own boxes (their bwrap, init
and prepared stem, the box and stem cgroups) are the sandbox's, not the run's: the probe waits
until the pool has settled and leaves them out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from khala.sandbox.bwrap import BwrapSandbox
from khala.sandbox.warm import WarmSandbox


def mounts(roots: Iterable[str]) -> set[str]:
    """Mount points of this (the host's) mount namespace at or under one of `roots`."""
    real = [os.path.realpath(r) for r in roots]
    with open("/proc/self/mountinfo") as fh:
        points = {line.split()[4].replace("\\040", " ") for line in fh}
    return {p for p in points if any(p == r or p.startswith(r.rstrip("/") + "/") for r in real)}


def _parents() -> dict[int, int]:
    """pid → parent pid of every process on the machine."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry)] = int(fields[1])
    return found


def descendants(of: int) -> set[int]:
    """Every process below `of` in the process tree (bounded by the number of processes)."""
    parents = _parents()
    kids: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        kids.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = [of]
    while todo and len(found) <= len(parents):
        for pid in kids.get(todo.pop(), []):
            if pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def _fd_links(pid: int) -> dict[int, str]:
    """fd → what it points to, of process `pid` (fds closed while read are left out)."""
    found: dict[int, str] = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for name in names:
        try:
            found[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
    return found


def _pidfd_target(pid: int, fd: int) -> int:
    """The process a pidfd refers to; -1 once it has been reaped."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
            for line in fh:
                if line.startswith("Pid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def unshared_fds(pid: int) -> list[str]:
    """The open fds of `pid` that tie it to no living process below it: a pipe end whose pipe
    no descendant holds, a pidfd of no living descendant, and every other fd. A warm box's
    pipes and pidfd are shared with the box's own processes, so they are left out whatever
    state the pool is in (building, preparing, replacing a box); a case's pipe end kept after
    its processes ended is counted."""
    below = descendants(pid)
    held = {link for kid in below for link in _fd_links(kid).values()
            if link.startswith("pipe:")}
    found = []
    for fd, link in sorted(_fd_links(pid).items()):
        if link.startswith("pipe:") and link in held:
            continue
        if link == "anon_inode:[pidfd]" and _pidfd_target(pid, fd) in below:
            continue
        found.append(f"{fd} -> {link}")
    return found


def in_cgroups(marker: str) -> set[int]:
    """Processes whose cgroup path (any hierarchy) contains `marker`."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cgroup") as fh:
                if marker in fh.read():
                    found.add(int(entry))
        except OSError:
            continue
    return found


def pool_owned(box: BwrapSandbox) -> tuple[set[int], set[str]]:
    """A warm pool's own processes (each box's bwrap and everything below it) and cgroup dirs,
    once it has settled; nothing for a cold sandbox."""
    if not isinstance(box, WarmSandbox):
        return set(), set()
    assert box.settle(30), "the warm pool did not settle"
    pids, _, cgroups = box.owned()
    return pids | {d for p in pids for d in descendants(p)}, cgroups


def run_cgroups(box: BwrapSandbox) -> set[str]:
    """Run cgroups of this process under the sandbox's tree, but a warm pool's own."""
    owned = pool_owned(box)[1]
    return {p for p in box.tree.leftovers(f"run-{os.getpid()}-") if p not in owned}


class LeakProbe:
    """Snapshot before a run; `leaks()` lists what is new afterwards, within the run's scope."""

    def __init__(self, box: BwrapSandbox, work_base: str, exclude_children: set[int],
                 roots: Iterable[str] = ()) -> None:
        self.box = box
        self.work_base = work_base
        self.roots = [work_base, *roots]
        self.cgroup_prefix = f"run-{os.getpid()}-"
        # Processes that exist already (servers other tests' session fixtures started) are not
        # this run's: only processes that appear during the run count as leaks.
        self.exclude = exclude_children | self._processes()
        self.mounts = mounts(self.roots)
        self.cgroups = set(box.tree.leftovers(self.cgroup_prefix))

    def _processes(self) -> set[int]:
        return descendants(os.getpid()) | in_cgroups(f"/{self.cgroup_prefix}")

    def leaks(self) -> list[str]:
        pool_pids, pool_cgroups = pool_owned(self.box)
        cgroups = self.box.tree.leftovers(self.cgroup_prefix)
        found = [f"cgroup {p}" for p in cgroups if p not in self.cgroups | pool_cgroups]
        found += [f"work dir entry {n}" for n in os.listdir(self.work_base)]
        found += [f"process {p}"
                  for p in sorted(self._processes() - self.exclude - pool_pids)]
        found += [f"mount {m}" for m in sorted(mounts(self.roots) - self.mounts)]
        return found

    @staticmethod
    def explain(leaks: list[str]) -> str:
        """`leaks` for an assertion message: each process with what /proc says of it now (name,
        state, parent, cgroups), so that a flaky leftover can be told apart from a real leak."""
        lines = []
        for leak in leaks:
            kind, _, pid = leak.partition(" ")
            lines.append(f"{leak}: {describe(int(pid))}" if kind == "process" else leak)
        return "\n".join(lines)

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False


def describe(pid: int) -> str:
    """Name, state, parent, thread-group ids and cgroups of a process, as /proc shows them."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            status = dict(line.split(":\t", 1) for line in fh.read().splitlines() if ":\t" in line)
        with open(f"/proc/{pid}/cgroup") as fh:
            cgroups = " ".join(fh.read().split())
    except OSError as exc:
        return f"gone ({exc.strerror})"
    fields = [f"{k}={status.get(k, '?').strip()}" for k in ("Name", "State", "PPid", "NSpid")]
    return " ".join(fields) + f" cgroups=[{cgroups}]"
