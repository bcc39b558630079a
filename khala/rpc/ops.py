"""The operations extensions of the Judicator service on the wire: executor statistics
(`report` argument 6, `executor_stats`) and a task's webhook (Task fields 41, 42). Statistics
travel as plain dicts inside Khala (khala/executor/stats.py builds them)."""

from __future__ import annotations

import logging
from typing import Any

from khala.model import Code, Webhook
from khala.rpc import judicator_thrift as T

log = logging.getLogger(__name__)


def webhook_to_thrift(hook: Webhook | None) -> Any:
    if hook is None:
        return None
    return T.Webhook(url=hook.url, state=hook.state, attempts=hook.attempts,
                     last_status=hook.last_status, last_error=hook.last_error,
                     delivered_at=hook.delivered_at)


def webhook_from_thrift(hook: Any) -> Webhook | None:
    if hook is None or not hook.url:
        return None
    return Webhook(url=hook.url, state=hook.state or "pending", attempts=hook.attempts or 0,
                   last_status=hook.last_status, last_error=hook.last_error or "",
                   delivered_at=hook.delivered_at or "")


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
                           pids=t.get("pids")) for t in stats.get("tasks", [])],
        name=stats.get("name"), report_time=stats.get("report_time"))


def stats_from_thrift(stats: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "slots": stats.slots or 0, "vacant": stats.vacant or 0, "version": stats.version or "",
        "load": list(stats.load or []), "memory_total": stats.memory_total or 0,
        "memory_available": stats.memory_available or 0,
        "tasks": [{"id": t.id or "", "status": t.status or 0, "cpu_time": t.cpu_time,
                   "memory": t.memory, "pids": t.pids} for t in stats.tasks or []],
    }
    if stats.name:
        doc["name"] = stats.name
    if stats.report_time:
        doc["report_time"] = stats.report_time
    return doc


class OpsCalls:
    """Client side (mixed into JudicatorClient)."""

    def _call(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, str]:
        raise NotImplementedError

    def executor_stats(self, name: str = "") -> tuple[int, list[dict[str, Any]]]:
        """(code, the latest statistics of live executors, or of the one named)."""
        reply, _address = self._call("executor_stats", name)
        return int(reply.result), [stats_from_thrift(s) for s in reply.executors or []]


class OpsHandler:
    """Server side (mixed into the judicator's Thrift handler); `service.ops` is the
    judicator's khala.judicator.ops.OpsApi."""

    service: Any

    def executor_stats(self, name: str | None) -> Any:
        try:
            code, found = self.service.ops.executor_stats(name or "")
        except Exception:
            log.exception("judicator executor_stats failed")
            return T.StatsReturn(result=Code.ERROR, executors=[])
        return T.StatsReturn(result=code, executors=[stats_to_thrift(s) for s in found])

    def record_stats(self, executor: str | None, stats: Any) -> None:
        """The statistics a report carried (never fails the report)."""
        if stats is None or not executor:
            return
        try:
            self.service.ops.record_stats(executor, stats_from_thrift(stats))
        except Exception:
            log.warning("could not keep the statistics of %s", executor, exc_info=True)
