"""The gateway's metrics: every request by route, method and status (each a fixed set of values,
khala/metrics/labels.py), with latency histograms,
at `/metrics`. Under gunicorn each worker writes its values into a per-gateway temporary
directory (prometheus_client's multiprocess mode, `prepare_multiprocess`, set before
prometheus_client is first imported) and `/metrics` adds them up, whichever worker answers."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time

from flask import Flask, Response, g, request

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess() -> str:
    """Create this gateway's metrics directory and point prometheus_client at it (call before
    importing it; the directory goes when the gateway's master exits)."""
    path = tempfile.mkdtemp(prefix="khala-gateway-metrics-")
    os.environ[MULTIPROC_ENV] = path
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def worker_exited(pid: int) -> None:
    """gunicorn child_exit hook: drop the live-gauge files of a dead worker."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def register_metrics(app: Flask) -> None:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Histogram,
        generate_latest,
        multiprocess,
    )

    from khala.metrics import LATENCY_BUCKETS, labels

    own = CollectorRegistry()
    requests_total = Counter("khala_http_requests", "HTTP requests by route, method, status",
                             ["route", "method", "status"], registry=own)
    latency = Histogram("khala_http_request_duration_seconds", "HTTP request latency",
                        ["route", "method"], buckets=LATENCY_BUCKETS, registry=own)

    routes: set[str] = set()

    def started() -> None:
        g.khala_started = time.perf_counter()

    def finished(response: Response) -> Response:
        began = g.get("khala_started")
        if began is not None:  # every label from a fixed set, whatever the client sent
            rule = request.url_rule.rule if request.url_rule else None
            if not routes:  # the app's routes, once every one is added
                routes.update(r.rule for r in app.url_map.iter_rules())
            route = labels.http_route(rule, routes)
            method = labels.http_method(request.method)
            requests_total.labels(route, method, labels.http_status(response.status_code)).inc()
            latency.labels(route, method).observe(time.perf_counter() - began)
        return response

    def metrics() -> Response:
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = own
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    app.before_request(started)
    app.after_request(finished)
    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
