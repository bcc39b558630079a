"""A step's getrusage(2) figures (`khala.model.Rusage`), from what the sandbox can measure. Pure.

Two sources, each used where it sees the step best:

- `wait4` of the step's top process: the kernel's counters of that process and of every
  descendant it (or they) waited for — page faults, block I/O, context switches, signals;
- the step's cgroup, when the backend has one: it holds every process of the step and nothing
  else, so it gives the CPU time (split into user and system in the proportion the cgroup's, or
  else `wait4`'s, counters show) and the peak memory. `wait4`'s own `maxrss` is no measure of a
  step: a forked child inherits its parent's memory high-water mark, so every child of a large
  executor would report the executor's size.
"""

from __future__ import annotations

import resource
from dataclasses import fields
from typing import Any

from khala.model import Rusage

#: struct rusage's fields after utime and stime, in the order of resource.struct_rusage.
COUNTS = tuple(f.name for f in fields(Rusage))[2:]


def from_wait(ru: Any) -> Rusage:
    """A wait4 struct_rusage (or None: nothing was reaped) as a Rusage; maxrss in bytes."""
    if ru is None:
        return Rusage()
    counts = {name: int(getattr(ru, f"ru_{name}")) for name in COUNTS}
    counts["maxrss"] *= 1024  # Linux reports KiB
    return Rusage(utime=float(ru.ru_utime), stime=float(ru.ru_stime), **counts)


def with_cgroup(waited: Rusage, cpu: float, split: tuple[float, float], peak: int) -> Rusage:
    """`waited` with the cgroup's CPU seconds `cpu` split as `split` (its user and system
    counters; when both are zero, as `waited`'s; else all system) and its peak bytes."""
    user, system = split
    if user + system <= 0:
        user, system = waited.utime, waited.stime
    share = user / (user + system) if user + system > 0 else 0.0
    utime = round(cpu * share, 6)
    return Rusage(**{**{f.name: getattr(waited, f.name) for f in fields(Rusage)},
                     "utime": utime, "stime": round(max(0.0, cpu - utime), 6),
                     "maxrss": int(peak)})


def to_struct(values: list[float]) -> resource.struct_rusage:
    """The 16 numbers of a struct rusage (as a warm box's init sends them) as the struct."""
    if len(values) != 16:
        raise ValueError(f"a struct rusage has 16 fields, not {len(values)}")
    return resource.struct_rusage(values)

