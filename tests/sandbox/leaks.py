"""What a sandboxed run could leave behind on the host: processes, cgroups, mounts, work dirs."""

from __future__ import annotations

import os

from khala.sandbox.bwrap import BwrapSandbox


def mounts() -> set[str]:
    """Mount points of this (the host's) mount namespace."""
    with open("/proc/self/mountinfo") as fh:
        return {line.split()[4] for line in fh}


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
        found = [f"cgroup {p}" for p in self.box.tree.leftovers(f"run-{os.getpid()}-")]
        found += [f"work dir entry {n}" for n in os.listdir(self.work_base)]
        found += [f"child process {p}" for p in children(os.getpid()) - self.exclude]
        found += [f"mount {m}" for m in mounts() - self.mounts]
        return found

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
