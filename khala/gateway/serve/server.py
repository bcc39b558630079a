"""Serving the gateway app under gunicorn, started from Python (no gunicorn command line).

Each worker process builds its own app (and so its own discovery watcher and judicator
connections) after the fork. SIGTERM and SIGINT both shut down gracefully: workers finish the
requests they hold, within the graceful timeout.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger

from khala.config import GatewaySettings
from khala.gateway.serve.worker import ReadAheadWorker
from khala.metrics.gateway import worker_exited

log = logging.getLogger(__name__)

GRACEFUL_TIMEOUT = 30  # seconds workers get to finish their requests on shutdown


class StderrLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with the access log ("-") on stderr instead of stdout."""

    def _set_handler(self, log: Any, output: Any, fmt: Any, stream: Any = None) -> None:
        if log is self.access_log:
            stream = sys.stderr
        super()._set_handler(log, output, fmt, stream)


#: The signals blocked from fork() until a worker's own handlers are installed: every signal
#: gunicorn's master handles (a worker inherits those handlers).
WORKER_SIGNALS = frozenset(Arbiter.SIGNALS)


class GracefulArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, except that SIGINT drains like SIGTERM instead of quitting at once,
    and that no signal sent to a worker while it boots is lost.

    gunicorn (issue #1910): a forked worker runs with the master's signal handlers until it
    installs its own; a SIGTERM the master sends in that window lands in the master's handler
    inside the worker and is lost, and the master then waits `graceful_timeout` for it. So the
    master blocks the signals around fork(); the child inherits the blocked mask and unblocks
    only once its own handlers are in place (`_worker_ready`), so the signal is delivered then.
    """

    def handle_int(self) -> None:
        raise StopIteration

    def spawn_worker(self) -> int:
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        try:
            return super().spawn_worker()  # type: ignore[no-any-return]
        finally:
            # The master after fork(); the child only reaches this when it exits.
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _worker_ready(worker: Any) -> None:
    """post_worker_init hook (the worker's handlers are installed): SIGINT (e.g. Ctrl-C on the
    process group) drains like SIGTERM, then the signals blocked since fork() are unblocked, so
    one that arrived while the worker booted is handled now."""
    signal.signal(signal.SIGINT, worker.handle_exit)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)


def gunicorn_options(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "bind": [settings.listen],
        "workers": max(1, settings.workers),
        "threads": max(1, settings.threads),
        "worker_class": ReadAheadWorker,
        "worker_connections": max(1, settings.max_connections),
        "timeout": int(settings.rpc_timeout) + 30,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 5,
        # Every write goes through the read-ahead socket's sendall, which has a deadline;
        # sendfile(2) would write around it.
        "sendfile": False,
        "accesslog": "-" if settings.access_log else None,
        "logger_class": StderrLogger,
        "errorlog": "-",
        "loglevel": settings.log_level,
        "proc_name": "khala-gateway",
        # gunicorn's control socket has one default path per user: gateways would clash on it.
        "control_socket_disable": True,
        "post_worker_init": _worker_ready,
        "child_exit": lambda _arbiter, worker: worker_exited(worker.pid),
    }


class GatewayServer(BaseApplication):  # type: ignore[misc]
    """`load` makes the app (in each worker); `max_body`: the largest body the app reads, which
    the read-ahead worker buffers whole (a larger one is handed on by its head: the app refuses
    it unread)."""

    def __init__(self, settings: GatewaySettings, load: Callable[[], Flask],
                 max_body: int) -> None:
        self.settings = settings
        self.max_body = max_body
        self._load = load
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._load()

    def run(self) -> None:
        try:
            GracefulArbiter(self).run()
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.exit(1)


def warn_if_threads_can_be_held(settings: GatewaySettings) -> None:
    """Waits and live streams hold a thread each for long: bounded per worker, they must
    leave threads to every other request (docs/security.md, "Bounds")."""
    held = max(1, settings.max_waits) + max(1, settings.max_streams)
    if held >= max(1, settings.threads):
        log.warning("max_waits (%d) + max_streams (%d) >= threads (%d): waiting clients and "
                    "live streams can take every thread of a gateway worker; raise threads",
                    settings.max_waits, settings.max_streams, settings.threads)


def serve(settings: GatewaySettings, load: Callable[[], Flask], max_body: int) -> None:
    """Serve the app `load` makes on settings.listen until SIGTERM/SIGINT."""
    warn_if_threads_can_be_held(settings)
    GatewayServer(settings, load, max_body).run()
