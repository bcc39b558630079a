"""pow-1's REST half (Process Over Websocket, seed 002) under /api/v2/pow/: the same calls as
the websocket at /api/v2/pow and the same task underneath, for HTTP-only clients, as the pow-1
server's own OpenAPI document describes them (docs/streaming.md, "pow-1 over REST"):

    POST /api/v2/pow/new              {"call": NAME, "params": [...]} → "ID"
    GET  /api/v2/pow/status/{id}      {"result": {"status": pending|fulfilled|rejected, …},
                                       "buffer": "the output so far"}
    POST /api/v2/pow/input/{id}       text/plain body → the process's stdin
    POST /api/v2/pow/closeInput/{id}  its stdin's end
    POST /api/v2/pow/cancel/{id}

Errors are text/plain, with the status as the document gives it (400, 404, 500) and 503 for
what may work on a retry. One blueprint ("pow"), behind API keys like API v2."""

from __future__ import annotations

from flask import Blueprint

from khala.config import GatewaySettings
from khala.gateway.pow.views import PowViews, on_http_error, register_errors
from khala.gateway.tables import table_blueprint
from khala.rpc.client import JudicatorClient
from khala.streams.registry import EndpointLookup

__all__ = ["PREFIX", "ROUTES", "on_http_error", "pow_blueprint"]

PREFIX = "/api/v2/pow"
#: (method, rule, view) of every route.
ROUTES = (
    ("POST", "/new", "new"),
    ("GET", "/status/<id>", "status"),
    ("POST", "/input/<id>", "input"),
    ("POST", "/closeInput/<id>", "close_input"),
    ("POST", "/cancel/<id>", "cancel"),
)


def pow_blueprint(settings: GatewaySettings, client: JudicatorClient,
                  lookup: EndpointLookup) -> Blueprint:
    """pow-1's REST routes (endpoints pow.<view>)."""
    return table_blueprint("pow", __name__, PowViews(settings, client, lookup), ROUTES,
                           register_errors, PREFIX)
