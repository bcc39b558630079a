"""The judicator's metrics. Collected without touching the service: the Thrift handler and the
store are wrapped (`handler`, `store`), leadership is watched through the reaper's `is_leader`
(`watch_leader`), and the queue, executors and free slots are read from the store at scrape
time (the same figures on every judicator: they share the store)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from khala import model
from khala.metrics import LATENCY_BUCKETS, TASK_BUCKETS, labels
from khala.model import Code, Status
from khala.rpc import judicator_thrift

#: The Thrift methods that get a series of their own: the IDL's (thriftpy2 refuses any other
#: name before the handler; anything else reaching it still counts as `other`).
RPC_METHODS = frozenset(judicator_thrift.Judicator.thrift_services)


def _result_name(reply: Any) -> str:
    code = reply if isinstance(reply, int) else getattr(reply, "result", None)
    if isinstance(reply, list):
        return "OK"
    return Code(code).name if code in set(Code) else "ERROR"


class JudicatorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.calls = Counter("khala_rpc_requests", "Thrift calls by method and result",
                             ["method", "result"], registry=r)
        self.call_seconds = Histogram("khala_rpc_request_duration_seconds",
                                      "Thrift call latency (long-polls and waits included)",
                                      ["method"], buckets=LATENCY_BUCKETS, registry=r)
        self.submitted = Counter("khala_tasks_submitted", "tasks created", registry=r)
        self.finished = Counter("khala_tasks_finished", "tasks recorded done, by status",
                                ["status"], registry=r)
        self.dispatch = Histogram("khala_task_dispatch_seconds",
                                  "add time → leased to an executor", buckets=TASK_BUCKETS,
                                  registry=r)
        self.run_time = Histogram("khala_task_run_seconds", "wall time of a finished step",
                                  ["step"], buckets=TASK_BUCKETS, registry=r)
        self.store_seconds = Histogram("khala_store_operation_duration_seconds",
                                       "store call latency", ["op"], buckets=LATENCY_BUCKETS,
                                       registry=r)
        self.leader = Gauge("khala_judicator_leader", "1 while this judicator leads",
                            registry=r)
        self.leader_changes = Counter("khala_leader_changes",
                                      "times this judicator gained or lost the leadership",
                                      registry=r)
        self.queue = Gauge("khala_queue_length", "tasks waiting (Pending + Retrying)",
                           registry=r)
        self.executors = Gauge("khala_executors_alive", "executors that reported within the "
                               "expiry", registry=r)
        self.slots_free = Gauge("khala_executor_slots_free", "free slots of live executors "
                                "(their latest statistics)", registry=r)
        self.slots = Gauge("khala_executor_slots", "slots of live executors", registry=r)

    # ------------------------------------------------------------------ wiring

    def watch_cluster(self, queue_length: Callable[[], int],
                      live_stats: Callable[[], list[dict[str, Any]]],
                      alive: Callable[[], int]) -> None:
        self.queue.set_function(queue_length)
        self.executors.set_function(alive)
        self.slots_free.set_function(lambda: sum(int(s.get("vacant", 0)) for s in live_stats()))
        self.slots.set_function(lambda: sum(int(s.get("slots", 0)) for s in live_stats()))

    def watch_leader(self, is_leader: Callable[[], bool]) -> Callable[[], bool]:
        state = {"last": False}

        def watched() -> bool:
            leading = bool(is_leader())
            if leading != state["last"]:
                state["last"] = leading
                self.leader_changes.inc()
                self.leader.set(1 if leading else 0)
            return leading

        return watched

    def handler(self, handler: Any) -> Any:
        return _MeteredHandler(handler, self)

    def store(self, store: Any) -> Any:
        return _MeteredStore(store, self)


class _MeteredHandler:
    """Every Thrift method of the handler, timed and counted by its ReturnCode."""

    def __init__(self, inner: Any, metrics: JudicatorMetrics) -> None:
        self._inner = inner
        self._m = metrics

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if not callable(method):
            return method
        m = self._m

        label = labels.rpc_method(name, RPC_METHODS)

        @functools.wraps(method)
        def timed(*args: Any) -> Any:
            began = time.perf_counter()
            reply = method(*args)
            m.call_seconds.labels(label).observe(time.perf_counter() - began)
            m.calls.labels(label, _result_name(reply)).inc()
            if name == "add" and _result_name(reply) == "OK":
                m.submitted.inc()
            elif name == "submit":
                m.submitted.inc(sum(1 for r in reply if r.result == Code.OK and r.created))
            return reply

        return timed


class _MeteredStore:
    """Every store call timed; finishes, cancels and assignments also counted."""

    def __init__(self, inner: Any, metrics: JudicatorMetrics) -> None:
        self._inner = inner
        self._m = metrics

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if not callable(method):
            return method
        m = self._m

        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return (value := method(*args, **kwargs))
            finally:
                m.store_seconds.labels(name).observe(time.perf_counter() - began)
                if "value" in locals():
                    _observe(m, name, args, value)

        return timed


def _observe(m: JudicatorMetrics, name: str, args: tuple[Any, ...], value: Any) -> None:
    if name == "finish" and value:
        status, result = args[2], args[3]
        m.finished.labels(Status(status).name.lower()).inc()
        for step in ("compile", "execute"):
            report = getattr(result, f"{step}_report", None)
            if report is not None:
                m.run_time.labels(step).observe(report.wall_time)
    elif name == "cancel" and value:
        m.finished.labels("cancelled").inc()
    elif name == "assign":
        now = model.parse_time(model.now())
        for task in value:
            if task.add_time:
                waited = (now - model.parse_time(task.add_time)).total_seconds()
                m.dispatch.observe(max(0.0, waited))
