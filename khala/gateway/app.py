"""The gateway's Flask app factory: routes, limits and JSON error handling; no globals."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from khala.config import GatewaySettings
from khala.discovery import Discovery, open_discovery
from khala.errors import Unavailable
from khala.gateway.v2 import register_v2
from khala.gateway.views import Api, answer
from khala.model import Code
from khala.rpc.client import JudicatorClient

log = logging.getLogger(__name__)

# Room for multipart boundaries and the small form fields around a task of the largest size; a
# body beyond it is refused before it is read (answered as result 3, too large).
FORM_OVERHEAD = 1024 * 1024


def _register_routes(app: Flask, api: Api) -> None:
    app.add_url_rule("/", "index", api.index, methods=["GET"])
    app.add_url_rule("/api/test", "test", api.test, methods=["GET"])
    app.add_url_rule("/api/task", "add", api.add, methods=["POST"])
    app.add_url_rule("/api/task", "cancel", api.cancel, methods=["DELETE"])
    app.add_url_rule("/api/task", "get", api.get, methods=["GET"])
    app.add_url_rule("/api/task/list", "search", api.search, methods=["GET"])
    app.add_url_rule("/api/executors", "executors", api.executors, methods=["GET"])
    app.add_url_rule("/api/judicators", "judicators", api.judicators, methods=["GET"])


def _is_download() -> bool:
    return request.endpoint == "get" and bool(request.args.get("file"))


def _register_errors(app: Flask) -> None:
    def on_unavailable(exc: Unavailable) -> Response:
        log.warning("%s %s: %s", request.method, request.path, exc)
        if _is_download():
            return Response("judicator unavailable\n", status=503, mimetype="text/plain")
        return answer(request.endpoint, Code.ERROR)

    def on_http_error(exc: HTTPException) -> Response | HTTPException:
        if exc.code == 413 and request.path.startswith("/api/"):
            return answer(request.endpoint or "add", Code.TOO_LARGE)
        return exc

    def on_error(exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        if _is_download() or not request.path.startswith("/api/"):
            return Response("internal error\n", status=500, mimetype="text/plain")
        return answer(request.endpoint, Code.ERROR)

    app.register_error_handler(Unavailable, on_unavailable)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(Exception, on_error)


def create_app(
    settings: GatewaySettings, client: Any = None, discovery: Discovery | None = None
) -> Flask:
    """The gateway app. `client` has JudicatorClient's typed methods (views.Judicator); by default
    one is built on `discovery`, itself opened from the settings when not given."""
    if discovery is None:
        discovery = open_discovery(settings)
    if client is None:
        client = JudicatorClient(discovery, settings.rpc_timeout)
    app = Flask(__name__)
    limit = settings.max_task_size + FORM_OVERHEAD
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_MEMORY_SIZE"] = limit
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["khala"] = Api(settings, client, discovery)
    _register_routes(app, app.extensions["khala"])
    _register_errors(app)
    register_v2(app, settings, client)  # API v2, /openapi.json, /docs/ (after the handlers)
    return app
