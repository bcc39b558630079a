"""Prometheus metrics (prometheus_client) of every node; names and meanings in
docs/operations.md, "Metrics".

- gateway.py: `/metrics` of the gateway app, gunicorn's workers aggregated through
  prometheus_client's multiprocess mode (a per-gateway temporary directory);
- judicator.py: Thrift calls, tasks, the queue, dispatch and run times, executors, leadership,
  store operations — served on the judicator's `metrics_listen`;
- executor.py: steps run, sandbox failures, slots — served on the executor's `metrics_listen`.

Each node owns one `CollectorRegistry` (no global registry).
"""

from __future__ import annotations

import logging
from typing import Any

from khala.config import parse_hostport

log = logging.getLogger(__name__)

#: Buckets of request, store and step latencies, seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Buckets of dispatch and run times, seconds.
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)


def serve(listen: str, registry: Any) -> Any:
    """Serve `registry` at http://listen/metrics from a daemon thread; None when `listen` is
    empty. Returns the server (its `shutdown()` stops it)."""
    if not listen:
        return None
    # Imported here, not above: the gateway must set its multiprocess directory before
    # prometheus_client is first imported (khala.metrics.gateway).
    from prometheus_client import start_http_server

    host, port = parse_hostport(listen)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server
