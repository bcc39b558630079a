"""What a sandboxed run could leave behind on the host: processes, cgroups, mounts, work dirs."""

from __future__ import annotations

import os

from khala.sandbox.bwrap import BwrapSandbox
from khala.sandbox.warm import WarmSandbox


def mounts() -> set[str]:
    """Mount points of this (the host's) mount namespace that this process may have made: work
    areas and warm stages carry its pid in their names (other engineers' executors on a shared
    host mount their own meanwhile), and anything else under the temporary directory."""
    pid = os.getpid()
    ours = (f"/khala-run-{pid}-", f"/khala-warm-{pid}-")
    others = ("/khala-run-", "/khala-warm-")
    found = set()
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4]
            if any(o in point for o in ours) or not any(o in point for o in others):
                found.add(point)
    return found


def children(of: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == of:
            found.add(int(entry))
    return found


def run_cgroups(box: BwrapSandbox) -> list[str]:
    """Run cgroups of this process left under the sandbox's tree, but for those a warm pool
    holds for its next steps (it is settled first)."""
    owned: set[str] = set()
    if isinstance(box, WarmSandbox):
        assert box.settle(30), "the warm pool did not settle"
        owned = box.owned()[2]
    return [p for p in box.tree.leftovers(f"run-{os.getpid()}-") if p not in owned]


class LeakProbe:
    """Snapshot before a run; `leaks()` lists what is new afterwards."""

    def __init__(self, box: BwrapSandbox, work_base: str, exclude_children: set[int]) -> None:
        self.box = box
        self.work_base = work_base
        # Children that exist already (servers other tests' session fixtures started) are not
        # this run's: only processes that appear during the run count as leaks.
        self.exclude = exclude_children | children(os.getpid())
        self.mounts = mounts()

    def leaks(self) -> list[str]:
        pids: set[int] = set()
        points: set[str] = set()
        cgroups: set[str] = set()
        if isinstance(self.box, WarmSandbox):  # the pool's own boxes are not the run's
            assert self.box.settle(30), "the warm pool did not settle"
            pids, points, cgroups = self.box.owned()
        found = [f"cgroup {p}" for p in self.box.tree.leftovers(f"run-{os.getpid()}-")
                 if p not in cgroups]
        found += [f"work dir entry {n}" for n in os.listdir(self.work_base)]
        found += [f"child process {p}" for p in children(os.getpid()) - self.exclude - pids]
        found += [f"mount {m}" for m in mounts() - self.mounts - points]
        return found

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
