"""What an executor reports about itself with each report (docs/api-v2.md, executors): slots,
host load and memory, version, and per running task the usage of its running step now (from
its cgroup, through the slot's SignalBox), with the cgroup's counters (Duxcore's stats)."""

from __future__ import annotations

import os
from typing import Any

from khala import __version__


def host_memory(path: str = "/proc/meminfo") -> tuple[int, int]:
    """(total, available) bytes; zeros when unreadable."""
    found: dict[str, int] = {}
    try:
        with open(path) as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name in ("MemTotal", "MemAvailable"):
                    found[name] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found.get("MemTotal", 0), found.get("MemAvailable", 0)


def collect(capacity: int, vacant: int, running: list[tuple[str, int, Any]]) -> dict[str, Any]:
    """`running`: (task id, status, its SignalBox) of each slot."""
    total, available = host_memory()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    tasks = []
    for task_id, status, box in running:
        usage = box.usage()
        doc = {"id": task_id, "status": int(status), "cpu_time": usage.get("cpu_time"),
               "memory": usage.get("memory"), "pids": usage.get("pids"),
               "pid": usage.get("pid")}
        if usage.get("counters"):  # the step's cgroup counters (khala/sandbox/cgstats.py)
            doc["counters"] = usage["counters"]
        tasks.append(doc)
    return {"slots": capacity, "vacant": vacant, "version": __version__, "load": load,
            "memory_total": total, "memory_available": available, "tasks": tasks}
