"""The counters of a running step's cgroup, read as the kernel gives them, for live statistics
(Duxcore's Docker-style stats, docs/duxcore.md): one flat map of names to integers. A counter
the kernel does not give for this cgroup (no such controller or file) is left out, never
invented; the reader shows it as null.

    memory/usage, memory/max_usage, memory/limit, memory/failcnt, memory/stat/<name>
    cpu/total_ns, cpu/user_ns, cpu/system_ns       (since the step started)
    cpu/periods, cpu/throttled_periods, cpu/throttled_ns
    pids/current, pids/limit
    blkio/<major>:<minor>/read, blkio/<major>:<minor>/write   (bytes)

(Names hold no dots: the statistics are stored as documents, and dotted names are paths to
MongoDB.)

The CPU time and its user/system split are the run cgroup's own readings (cpuacct on v1,
cpu.stat on v2), counted from the step's start; the throttling counters are the cgroup's
own, which may include a warm box's preparation before the step (a few periods at most).
"""

from __future__ import annotations

import os

from khala.sandbox.cgroups import (
    CPU_CONTROLLER,
    RunCgroup,
    V1RunCgroup,
    read_int,
    read_keyed,
    read_text,
)

#: The largest value a v1 memory limit file holds when there is no limit (page-rounded
#: LONG_MAX): shown as no limit.
V1_UNLIMITED = 0x7FFFFFFFFFFFF000


def counters(cg: RunCgroup) -> dict[str, int]:
    """The cgroup's counters now (OSError is not raised: what cannot be read is left out)."""
    found: dict[str, int] = {}
    if isinstance(cg, V1RunCgroup):
        _v1(cg.by_controller, found)
    else:
        _v2(cg.dirs[0], found)
    user, system = cg.cpu_split()
    found.update({"cpu/total_ns": round(cg.cpu_seconds() * 1e9),
                  "cpu/user_ns": round(user * 1e9), "cpu/system_ns": round(system * 1e9)})
    found["pids/current"] = len(cg.pids())
    return found


def _put(found: dict[str, int], name: str, path: str) -> None:
    try:
        text = read_text(path).strip()
    except OSError:
        return
    if text.lstrip("-").isdigit():
        found[name] = int(text)


def _keyed(found: dict[str, int], prefix: str, path: str) -> None:
    for key, value in read_keyed(path).items():
        found[prefix + key] = value


def _v1(dirs: dict[str, str], found: dict[str, int]) -> None:
    memory = dirs.get("memory")
    if memory:
        for name, file in (("usage", "usage_in_bytes"), ("max_usage", "max_usage_in_bytes"),
                           ("limit", "limit_in_bytes"), ("failcnt", "failcnt")):
            _put(found, f"memory/{name}", os.path.join(memory, f"memory.{file}"))
        if found.get("memory/limit", 0) >= V1_UNLIMITED:
            del found["memory/limit"]
        _keyed(found, "memory/stat/", os.path.join(memory, "memory.stat"))
    cpu = dirs.get(CPU_CONTROLLER)
    if cpu:
        stat = read_keyed(os.path.join(cpu, "cpu.stat"))
        for name, key in (("periods", "nr_periods"), ("throttled_periods", "nr_throttled"),
                          ("throttled_ns", "throttled_time")):
            if key in stat:
                found[f"cpu/{name}"] = stat[key]
    pids = dirs.get("pids")
    if pids:
        _put(found, "pids/limit", os.path.join(pids, "pids.max"))
    blkio = dirs.get("blkio")
    if blkio:
        _blkio_v1(os.path.join(blkio, "blkio.throttle.io_service_bytes"), found)


def _blkio_v1(path: str, found: dict[str, int]) -> None:
    try:
        lines = read_text(path).splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("Read", "Write") and parts[2].isdigit():
            found[f"blkio/{parts[0]}/{parts[1].lower()}"] = int(parts[2])


def _v2(path: str, found: dict[str, int]) -> None:
    for name, file in (("usage", "memory.current"), ("max_usage", "memory.peak"),
                       ("limit", "memory.max")):
        _put(found, f"memory/{name}", os.path.join(path, file))  # "max" is left out
    _keyed(found, "memory/stat/", os.path.join(path, "memory.stat"))
    stat = read_keyed(os.path.join(path, "cpu.stat"))
    if "throttled_usec" in stat:
        found["cpu/throttled_ns"] = stat["throttled_usec"] * 1000
    for name, key in (("periods", "nr_periods"), ("throttled_periods", "nr_throttled")):
        if key in stat:
            found[f"cpu/{name}"] = stat[key]
    limit = read_int(os.path.join(path, "pids.max"), -1)
    if limit >= 0:
        found["pids/limit"] = limit
    try:
        lines = read_text(os.path.join(path, "io.stat")).splitlines()
    except OSError:
        return
    for line in lines:
        device, *pairs = line.split()
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key in ("rbytes", "wbytes") and value.isdigit():
                found[f"blkio/{device}/{'read' if key == 'rbytes' else 'write'}"] = int(value)
