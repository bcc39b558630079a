"""Duxcore's HTTP API (seed 001) at its own paths, /service and /docker/image: an adapter over
Khala's jobs and images. A service is a job created stopped whose runs execute its command in
its image (spec.py); its inspect and stats documents are Docker's (inspect.py, stats.py, the
latter from the running step's cgroup counters); errors are Docker's `{"message"}`
(errors.py). docs/duxcore.md says what maps, what differs and what is refused. One blueprint
("duxcore"), behind API keys, sent as `X-Duxcore-CoreKey` (base64 of the key, auth.py)."""

from __future__ import annotations

from flask import Blueprint

from khala.config import GatewaySettings
from khala.gateway.duxcore.errors import PREFIXES, on_http_error, register_errors
from khala.gateway.duxcore.views import ServiceViews
from khala.gateway.tables import table_blueprint
from khala.rpc.client import JudicatorClient

__all__ = ["PREFIXES", "ROUTES", "duxcore_blueprint", "on_http_error"]

#: (method, rule, view) of every route.
ROUTES = (
    ("POST", "/service", "create"),
    ("GET", "/service/<id>", "get"),
    ("DELETE", "/service/<id>", "delete"),
    ("POST", "/service/<id>/ctl", "ctl"),
    ("GET", "/service/<id>/stats", "stats"),
    ("PATCH", "/service/<id>/env", "env"),
    ("PUT", "/service/<id>/bind", "bind"),
    ("POST", "/docker/image", "image"),
)


def duxcore_blueprint(settings: GatewaySettings, client: JudicatorClient) -> Blueprint:
    """The Duxcore routes (endpoints duxcore.<view>)."""
    return table_blueprint("duxcore", __name__, ServiceViews(settings, client), ROUTES,
                           register_errors)
