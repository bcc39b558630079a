"""The gateway node: the HTTP APIs (Flask app factory, app.py) served by gunicorn (serve/)."""

from __future__ import annotations

from khala.config import GatewaySettings
from khala.gateway.app import body_limit, create_app
from khala.gateway.auth import warn_if_open

__all__ = ["create_app", "run"]


def run(settings: GatewaySettings) -> None:
    """Serve the HTTP API on settings.listen until SIGTERM/SIGINT."""
    from khala.gateway.serve.server import serve  # gunicorn: only where a gateway runs

    warn_if_open(settings)
    serve(settings, lambda: create_app(settings), body_limit(settings))
