"""Serving the gateway app under gunicorn, started from Python (no gunicorn command line).

Each worker process builds its own app (and so its own discovery watcher and judicator
connections) after the fork. SIGTERM and SIGINT both shut down gracefully: workers finish the
requests they hold, within the graceful timeout.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger

from khala.config import GatewaySettings
from khala.gateway.app import create_app

GRACEFUL_TIMEOUT = 30  # seconds workers get to finish their requests on shutdown


class StderrLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with the access log ("-") on stderr instead of stdout."""

    def _set_handler(self, log: Any, output: Any, fmt: Any, stream: Any = None) -> None:
        if log is self.access_log:
            stream = sys.stderr
        super()._set_handler(log, output, fmt, stream)


class GracefulArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, except that SIGINT drains like SIGTERM instead of quitting at once."""

    def handle_int(self) -> None:
        raise StopIteration


def _graceful_worker_int(worker: Any) -> None:
    """post_worker_init hook: a worker's SIGINT (e.g. Ctrl-C on the process group) drains too."""
    signal.signal(signal.SIGINT, worker.handle_exit)


def gunicorn_options(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "bind": [settings.listen],
        "workers": max(1, settings.workers),
        "threads": max(1, settings.threads),
        "worker_class": "gthread",
        "timeout": int(settings.rpc_timeout) + 30,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 5,
        "accesslog": "-",
        "logger_class": StderrLogger,
        "errorlog": "-",
        "loglevel": settings.log_level,
        "proc_name": "khala-gateway",
        # gunicorn's control socket has one default path per user: gateways would clash on it.
        "control_socket_disable": True,
        "post_worker_init": _graceful_worker_int,
    }


class GatewayServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self.settings)

    def run(self) -> None:
        try:
            GracefulArbiter(self).run()
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.exit(1)


def run(settings: GatewaySettings) -> None:
    """Serve the HTTP API on settings.listen until SIGTERM/SIGINT."""
    GatewayServer(settings).run()
