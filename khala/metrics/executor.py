"""The executor's metrics: steps by reason with their wall times, sandbox failures (a step the
sandbox could not run to its end: reason internal_error), and its slots."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from khala.metrics import TASK_BUCKETS
from khala.model import Reason
from khala.sandbox.base import RunOutcome, RunSpec, Sandbox


class ExecutorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.steps = Counter("khala_steps", "sandboxed steps run, by reason", ["reason"],
                             registry=r)
        self.step_seconds = Histogram("khala_step_run_seconds", "wall time of a step",
                                      buckets=TASK_BUCKETS, registry=r)
        self.failures = Counter("khala_sandbox_failures", "steps the sandbox could not run "
                                "to their end (internal_error)", registry=r)
        self.slots = Gauge("khala_executor_slots", "slots of this executor", registry=r)
        self.busy = Gauge("khala_executor_slots_busy", "slots running a task", registry=r)

    def watch_slots(self, capacity: int, busy: Callable[[], int]) -> None:
        self.slots.set(capacity)
        self.busy.set_function(busy)

    def sandbox(self, sandbox: Sandbox) -> Sandbox:
        return _MeteredSandbox(sandbox, self)

    def watch_file_cache(self, counts: Any, size: Callable[[], int]) -> None:
        """The file cache's counts (khala/executor/filecache.py CacheCounts) and its bytes."""
        self.registry.register(_Counts(counts, _Counts.FILES))
        Gauge("khala_file_cache_bytes", "bytes in the file cache", registry=self.registry
              ).set_function(size)

    def watch_images(self, counts: Any, size: Callable[[], int]) -> None:
        """The unpacked images' counts (khala/executor/images.py ImageCounts) and bytes."""
        self.registry.register(_Counts(counts, _Counts.IMAGES))
        Gauge("khala_image_bytes", "bytes of the unpacked images", registry=self.registry
              ).set_function(size)


class _Counts(Collector):
    """Counters read from a counts object at scrape time: (its field, the name, the help)."""

    FILES = (("fetches", "khala_file_fetches", "files fetched from the judicators"),
             ("fetched_bytes", "khala_file_fetched_bytes", "bytes of the files fetched"),
             ("hits", "khala_file_cache_hits", "files a task found in the cache, checked"),
             ("refetches", "khala_file_refetches",
              "cached files found missing or corrupt and fetched again"),
             ("evictions", "khala_file_evictions", "files evicted to stay within the bound"))
    IMAGES = (("unpacks", "khala_image_unpacks", "images unpacked (their tars fetched first)"),
              ("hits", "khala_image_hits", "images a task found unpacked"),
              ("evictions", "khala_image_evictions", "images removed to stay within the bound"))

    def __init__(self, counts: Any, names: tuple[tuple[str, str, str], ...]) -> None:
        self._counts, self._names = counts, names

    def collect(self) -> Any:
        for field, name, text in self._names:
            family = CounterMetricFamily(name, text)
            family.add_metric([], getattr(self._counts, field))
            yield family


class _MeteredSandbox(Sandbox):
    """The executor's sandbox, its steps counted. Every method of Sandbox is passed on here by
    name: one the base class defines would otherwise answer for the wrapped backend."""

    def __init__(self, inner: Sandbox, metrics: ExecutorMetrics) -> None:
        self._inner = inner
        self._m = metrics
        self.name = inner.name

    def run(self, spec: RunSpec, cancel: threading.Event) -> RunOutcome:
        outcome = self._inner.run(spec, cancel)
        reason = outcome.report.reason
        self._m.steps.labels(str(reason)).inc()
        self._m.step_seconds.observe(outcome.report.wall_time)
        if reason == Reason.INTERNAL_ERROR:
            self._m.failures.inc()
        return outcome

    def open_workdir(self, workdir: str, size: int | None) -> None:
        self._inner.open_workdir(workdir, size)

    def close_workdir(self, workdir: str) -> None:
        self._inner.close_workdir(workdir)

    def prepare_workdir(self, workdir: str, identity: tuple[int, int] | None = None) -> None:
        self._inner.prepare_workdir(workdir, identity)

    def place_file(self, source: str, target: str) -> None:
        self._inner.place_file(source, target)

    def make_cwd(self, workdir: str, cwd: str) -> None:
        self._inner.make_cwd(workdir, cwd)

    def supports(self, spec: RunSpec) -> str:
        return self._inner.supports(spec)

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
