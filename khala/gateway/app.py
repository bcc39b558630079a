"""The gateway's Flask app factory: routes, limits and JSON error handling; no globals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from khala.config import GatewaySettings
from khala.discovery import Discovery, open_discovery
from khala.errors import InvalidInput, TooLarge, Unavailable
from khala.gateway.auth import register_auth
from khala.gateway.live.routes import register_live
from khala.gateway.meproc import meproc_error, register_meproc
from khala.gateway.seed.formparser import StrictRequest
from khala.gateway.seed.views import EMPTY_ANSWERS, Api, answer
from khala.gateway.site import register_site
from khala.gateway.v2 import register_v2
from khala.metrics.gateway import register_metrics
from khala.model import Code
from khala.rpc.auth import NodeAuth
from khala.rpc.client import JudicatorClient

log = logging.getLogger(__name__)

# Room for multipart boundaries and the small form fields around a task of the largest size; a
# body beyond it is refused before it is read (answered as result 3, too large).
FORM_OVERHEAD = 1024 * 1024


def _register_routes(app: Flask, api: Api) -> None:
    app.add_url_rule("/api", "index", api.index, methods=["GET"])
    app.add_url_rule("/api/test", "test", api.test, methods=["GET"])
    app.add_url_rule("/api/task", "add", api.add, methods=["POST"])
    app.add_url_rule("/api/task", "cancel", api.cancel, methods=["DELETE"])
    app.add_url_rule("/api/task", "get", api.get, methods=["GET"])
    app.add_url_rule("/api/task/list", "search", api.search, methods=["GET"])
    app.add_url_rule("/api/executors", "executors", api.executors, methods=["GET"])
    app.add_url_rule("/api/judicators", "judicators", api.judicators, methods=["GET"])


def _is_download() -> bool:
    return request.endpoint == "get" and bool(request.args.get("file"))


#: How the app answers a request no endpoint takes (unknown path: 404, wrong method: 405):
#: `shape(http_status, message)`. Chosen by the longest prefix of the request path in
#: app.extensions["khala.error_shapes"]; add one with `register_error_shape` (e.g. "/api/v2" with
#: its own {"errors": [...]} body). A path no prefix matches gets werkzeug's HTML page.
ErrorShape = Callable[[int, str], Response]


def seed_error(status: int, message: str) -> Response:
    """The seed API's shape: `{"result": 2}` (not exist) for 404, `{"result": 4}` (invalid input)
    otherwise, with the HTTP status kept and an `error` text."""
    code = Code.NOT_EXIST if status == 404 else Code.INVALID_INPUT
    reply = jsonify({"result": int(code), "error": message})
    reply.status_code = status
    return reply


def register_error_shape(app: Flask, prefix: str, shape: ErrorShape) -> None:
    app.extensions.setdefault("khala.error_shapes", {})[prefix] = shape


def _error_shape(app: Flask, path: str) -> ErrorShape | None:
    shapes: dict[str, ErrorShape] = app.extensions.get("khala.error_shapes", {})
    matching = [prefix for prefix in shapes if path.startswith(prefix)]
    return shapes[max(matching, key=len)] if matching else None


def _is_json_endpoint() -> bool:
    return request.endpoint in EMPTY_ANSWERS and not _is_download()


def _register_errors(app: Flask) -> None:
    def on_unavailable(exc: Unavailable) -> Response:
        log.warning("%s %s: %s", request.method, request.path, exc)
        if _is_download():
            return Response("judicator unavailable\n", status=503, mimetype="text/plain")
        return answer(request.endpoint, Code.ERROR)

    def on_invalid(exc: InvalidInput) -> Response:
        """Input refused while the request was parsed (the form): result 3 or 4, HTTP 200."""
        log.debug("%s %s refused: %s", request.method, request.path, exc)
        code = Code.TOO_LARGE if isinstance(exc, TooLarge) else Code.INVALID_INPUT
        return answer(request.endpoint, code, str(exc))

    def on_http_error(exc: HTTPException) -> Response | HTTPException:
        if exc.code == 413 and request.path.startswith("/api/"):
            return answer(request.endpoint or "add", Code.TOO_LARGE,
                          "the request is larger than the gateway takes (max_task_size)")
        if _is_json_endpoint() and exc.code is not None and 400 <= exc.code < 500:
            return answer(request.endpoint, Code.INVALID_INPUT,  # e.g. a malformed body
                          f"malformed request: {exc.description or exc.name}")
        shape = _error_shape(app, request.path)
        if shape is None or exc.code is None:
            return exc
        reply = shape(exc.code, f"{exc.code} {exc.name}: {request.method} {request.path}")
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            reply.headers["Allow"] = ", ".join(exc.valid_methods)
        return reply

    def on_error(exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        if _is_download() or not request.path.startswith("/api/"):
            return Response("internal error\n", status=500, mimetype="text/plain")
        return answer(request.endpoint, Code.ERROR)

    app.register_error_handler(Unavailable, on_unavailable)
    app.register_error_handler(InvalidInput, on_invalid)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(Exception, on_error)
    register_error_shape(app, "/", seed_error)


def create_app(
    settings: GatewaySettings, client: Any = None, discovery: Discovery | None = None
) -> Flask:
    """The gateway app. `client` has JudicatorClient's typed methods (views.Judicator); by default
    one is built on `discovery`, itself opened from the settings when not given."""
    if discovery is None:
        discovery = open_discovery(settings)
    if client is None:
        auth = NodeAuth.from_file(settings.cluster_secret_file)
        client = JudicatorClient(discovery, settings.rpc_timeout, auth=auth, name="gateway")
    app = Flask(__name__)
    app.request_class = StrictRequest
    limit = settings.max_task_size + FORM_OVERHEAD
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_MEMORY_SIZE"] = limit
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["khala"] = Api(settings, client, discovery)
    _register_routes(app, app.extensions["khala"])
    register_site(app)
    _register_errors(app)
    register_metrics(app)  # /metrics and request timing (first: it times refusals too)
    register_auth(app, settings, client)  # API keys (before the v2 routes' own hooks)
    register_v2(app, settings, client)  # API v2, /openapi.json, /docs/ (after the handlers)
    register_live(app, settings, client)  # pow-1 websocket, task event streams
    register_meproc(app, client)  # Meproc's /proc routes
    register_error_shape(app, "/proc", meproc_error)
    return app
