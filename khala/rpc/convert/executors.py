"""Executors on the wire: the seed listing, language presets, and the statistics an executor
reports about itself (plain dicts inside Khala: khala/executor/stats.py builds them)."""

from __future__ import annotations

from typing import Any

from khala.model import ExecutorInfo, Language
from khala.rpc import judicator_thrift as T


def executor_to_thrift(info: ExecutorInfo) -> Any:
    return T.Executor(id=info.id, hostname=info.hostname, report_time=info.report_time)


def executor_from_thrift(info: Any) -> ExecutorInfo:
    return ExecutorInfo(id=info.id or "", hostname=info.hostname or "",
                        report_time=info.report_time or "")


def language_to_thrift(language: Language) -> Any:
    return T.Language(name=language.name, version=language.version,
                      executors=language.executors,
                      executor_names=list(language.executor_names) or None,
                      image=language.image or None, source=language.source or None,
                      time_factor=language.time_factor)


def language_from_thrift(language: Any) -> Language:
    return Language(name=language.name or "", version=language.version or "",
                    executors=language.executors or 0,
                    executor_names=[n for n in language.executor_names or [] if n],
                    image=language.image or "", source=language.source or "",
                    time_factor=sane_factor(language.time_factor))


def sane_factor(value: object) -> float:
    """A time factor as a node sent it, or 1 when it is not one (absent, NaN, out of range)."""
    return float(value) if isinstance(value, (int, float)) and 0 < value <= 100 else 1.0


def stats_to_thrift(stats: dict[str, Any] | None) -> Any:
    if stats is None:
        return None
    return T.ExecutorStats(
        slots=int(stats.get("slots", 0)), vacant=int(stats.get("vacant", 0)),
        version=str(stats.get("version", "")),
        load=[float(x) for x in stats.get("load", [])],
        memory_total=int(stats.get("memory_total", 0)),
        memory_available=int(stats.get("memory_available", 0)),
        tasks=[T.TaskUsage(id=t["id"], status=int(t.get("status", 0)),
                           cpu_time=t.get("cpu_time"), memory=t.get("memory"),
                           pids=t.get("pids"), pid=t.get("pid"),
                           counters=_counters(t.get("counters")))
               for t in stats.get("tasks", [])],
        name=stats.get("name"), report_time=stats.get("report_time"))


def stats_from_thrift(stats: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "slots": stats.slots or 0, "vacant": stats.vacant or 0, "version": stats.version or "",
        "load": list(stats.load or []), "memory_total": stats.memory_total or 0,
        "memory_available": stats.memory_available or 0,
        "tasks": [_usage(t) for t in stats.tasks or []],
    }
    if stats.name:
        doc["name"] = stats.name
    if stats.report_time:
        doc["report_time"] = stats.report_time
    return doc


I64 = 2**63


def _counters(found: Any) -> dict[str, int] | None:
    """A running step's cgroup counters for the wire (i64 values; None: none reported)."""
    if not isinstance(found, dict) or not found:
        return None
    return {str(k): int(v) for k, v in found.items()
            if isinstance(v, int) and -I64 <= v < I64}


def _usage(usage: Any) -> dict[str, Any]:
    doc = {"id": usage.id or "", "status": usage.status or 0, "cpu_time": usage.cpu_time,
           "memory": usage.memory, "pids": usage.pids, "pid": usage.pid}
    if usage.counters:  # an older executor sends none
        doc["counters"] = dict(usage.counters)
    return doc
