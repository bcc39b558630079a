"""Meproc's HTTP API (seed 003) at /proc over Khala's jobs (views.py; docs/meproc.md). One
blueprint ("meproc"); everything it cannot do is answered in Meproc's `{code, msg}` with the
HTTP status as `code` (400 for any invalid request, as Meproc does)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from khala.config import GatewaySettings
from khala.errors import InvalidInput, KhalaError, RemoteError, Unavailable
from khala.gateway.auth import KeyRefused
from khala.gateway.meproc.views import MeprocApi, reply
from khala.rpc.client import JudicatorClient

log = logging.getLogger(__name__)


def on_refusal(exc: KhalaError) -> Response:
    if isinstance(exc, RemoteError):
        log.warning("%s %s: %s", request.method, request.path, exc)
        return reply(503, "a judicator could not do it")
    if isinstance(exc, Unavailable):
        log.warning("%s %s: %s", request.method, request.path, exc)
        return reply(503, "no judicator answered")
    if isinstance(exc, InvalidInput):
        return reply(400, str(exc))
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return reply(exc.http_status, "internal error")
    answer = reply(exc.http_status, str(exc))
    if isinstance(exc, KeyRefused):
        answer.headers.update(exc.headers)
    return answer


def on_http_error(exc: HTTPException) -> Response:
    """Also the answer to requests under /proc no route takes."""
    status = exc.code or 500
    return reply(status, f"{status} {exc.name}: {request.method} {request.path}")


def on_error(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    return reply(500, "internal error")


def meproc_blueprint(settings: GatewaySettings, client: JudicatorClient) -> Blueprint:
    """Meproc's /proc (endpoint meproc.proc)."""
    api = MeprocApi(settings, client)
    views = {"POST": api.start, "PUT": api.restart, "DELETE": api.stop, "GET": api.show}

    def proc() -> Response:
        return views[request.method]()

    blueprint = Blueprint("meproc", __name__)
    blueprint.add_url_rule("/proc", "proc", proc, methods=list(views))
    blueprint.register_error_handler(KhalaError, on_refusal)
    blueprint.register_error_handler(HTTPException, on_http_error)
    blueprint.register_error_handler(Exception, on_error)
    return blueprint
