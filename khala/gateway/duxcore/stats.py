"""GET /service/<id>/stats: Docker's stats document (the seed's example) from the counters of
the running step's cgroup that its executor last reported (khala/sandbox/cgstats.py, carried
by executor statistics, at most half a second old). What the kernel gives nothing for here is
null, never a made-up zero: networks (the user network stack's counters are not read), the host
CPU figures (the gateway is not the executor's host), the Windows-only fields, blkio where the
run cgroup has no blkio controller (cgroup v1 runs here have none). Pure."""

from __future__ import annotations

import hashlib
from typing import Any

NEVER = "0001-01-01T00:00:00Z"  # Docker's zero time: no earlier reading


def docker_id(service_id: str) -> str:
    """A 64-hex id for a service, stable for its Duxcore id (Docker's ids are 64 hex)."""
    return hashlib.sha256(service_id.encode()).hexdigest()


def rfc3339(khala_time: str | None) -> str:
    """Khala's times (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC) as Docker writes them."""
    if not khala_time:
        return NEVER
    return khala_time.replace(" ", "T") + "Z"


def _memory(c: dict[str, int]) -> dict[str, Any]:
    stats = {k.removeprefix("memory/stat/"): v for k, v in c.items()
             if k.startswith("memory/stat/")}
    return {"stats": stats or None, "max_usage": c.get("memory/max_usage"),
            "usage": c.get("memory/usage"), "failcnt": c.get("memory/failcnt"),
            "limit": c.get("memory/limit"), "commit": None, "commit_peak": None,
            "commitbytes": None, "commitpeakbytes": None, "privateworkingset": None}


def _blkio(c: dict[str, int]) -> dict[str, Any]:
    entries = []
    for key, value in sorted(c.items()):
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "blkio":
            major, _, minor = parts[1].partition(":")
            if major.isdigit() and minor.isdigit():
                entries.append({"major": int(major), "minor": int(minor), "op": parts[2],
                                "value": value})
    return {"io_service_bytes_recursive": entries or None, "io_serviced_recursive": None,
            "io_queue_recursive": None, "io_service_time_recursive": None,
            "io_wait_time_recursive": None, "io_merged_recursive": None,
            "io_time_recursive": None, "sectors_recursive": None}


def _cpu(c: dict[str, int]) -> dict[str, Any]:
    throttling = None
    if "cpu/periods" in c:
        throttling = {"periods": c["cpu/periods"],
                      "throttled_periods": c.get("cpu/throttled_periods"),
                      "throttled_time": c.get("cpu/throttled_ns")}
    return {"cpu_usage": {"percpu_usage": None, "usage_in_usermode": c.get("cpu/user_ns"),
                          "total_usage": c.get("cpu/total_ns"),
                          "usage_in_kernelmode": c.get("cpu/system_ns")},
            "system_cpu_usage": None, "online_cpus": None, "throttling_data": throttling}


def stats_document(service_id: str, counters: dict[str, int] | None, read: str) -> dict[str, Any]:
    """The stats of a service whose running step reported `counters` at `read` (Khala time);
    None: it runs no step now (every counter null)."""
    c = counters or {}
    pids = None
    if "pids/current" in c:
        pids = {"current": c["pids/current"], "limit": c.get("pids/limit")}
    return {
        "read": rfc3339(read), "preread": NEVER, "num_procs": 0, "pids_stats": pids,
        "network": None, "networks": None, "memory_stats": _memory(c),
        "blkio_stats": _blkio(c), "cpu_stats": _cpu(c), "precpu_stats": _cpu({}),
        "storage_stats": {"read_count_normalized": None, "read_size_bytes": None,
                          "write_count_normalized": None, "write_size_bytes": None},
        "name": "/" + service_id, "id": docker_id(service_id),
    }
