"""The gateway's Flask app factory; no globals.

One blueprint per API surface, each answering its own errors in its own shape: the seed API
(seed/), API v2 (v2/), its live routes (live/), and the neighbouring seeds' APIs at their own
paths: Procstar's /procs (procstar/), pow-1's REST half (pow/), Meproc's /proc (meproc/) and
Duxcore's /service and /docker/image (duxcore/);
the website's pages (site.py) and /metrics sit on the app. The key check (auth.py) runs before
every request and only raises. A request no route takes (404, 405) is answered in the shape of
the surface whose path prefix it has (`ROUTE_ERRORS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from khala.config import GatewaySettings
from khala.discovery import Discovery, open_discovery
from khala.errors import KhalaError
from khala.gateway import duxcore, meproc
from khala.gateway import pow as pow_rest
from khala.gateway.auth import KeyRefused, register_auth
from khala.gateway.finished import FinishedTasks
from khala.gateway.live.routes import live_blueprint
from khala.gateway.paths import more_paths
from khala.gateway.procstar import errors as procstar_errors
from khala.gateway.procstar import procstar_blueprint
from khala.gateway.seed import errors as seed_errors
from khala.gateway.seed.formparser import StrictRequest
from khala.gateway.seed.views import seed_blueprint
from khala.gateway.site import register_site
from khala.gateway.v2 import errors as v2_errors
from khala.gateway.v2 import v2_blueprint
from khala.metrics.gateway import register_metrics
from khala.rpc.auth import NodeAuth
from khala.rpc.client import JudicatorClient
from khala.streams.registry import EndpointLookup

log = logging.getLogger(__name__)

# Room for multipart boundaries and the small form fields around a task of the largest size; a
# body beyond it is refused before it is read (answered as result 3, too large).
FORM_OVERHEAD = 1024 * 1024

#: Path prefix → how that surface answers a request no route takes; the longest prefix wins.
ROUTE_ERRORS: dict[str, Callable[[HTTPException], Any]] = {
    "/": seed_errors.on_http_error,
    v2_errors.PREFIX: v2_errors.on_http_error,
    "/proc": meproc.on_http_error,
    procstar_errors.PREFIX: procstar_errors.on_http_error,
    pow_rest.PREFIX + "/": pow_rest.on_http_error,
    **{prefix: duxcore.on_http_error for prefix in duxcore.PREFIXES},
}


def body_limit(settings: GatewaySettings) -> int:
    """The largest request body the app reads (a seed form with a task of the largest size;
    API v2 allows its routes more, khala.gateway.v2.body_limit)."""
    return settings.max_task_size + FORM_OVERHEAD


def _route_error(exc: HTTPException) -> Any:
    if exc.code is None:
        return exc
    prefix = max((p for p in ROUTE_ERRORS if request.path.startswith(p)), key=len)
    reply = ROUTE_ERRORS[prefix](exc)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods and isinstance(reply, Response):
        reply.headers["Allow"] = ", ".join(exc.valid_methods)
    return reply


def _refused(exc: KhalaError) -> Response:
    """A KhalaError outside the surfaces (a refused key on /metrics): plain text."""
    reply = Response(f"{exc}\n", status=exc.http_status, mimetype="text/plain")
    if isinstance(exc, KeyRefused):
        reply.headers.update(exc.headers)
    return reply


def _failed(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    return Response("internal error\n", status=500, mimetype="text/plain")


def register_forgetting(app: Flask, finished: FinishedTasks) -> None:
    """A DELETE this worker carried out (a task or a job's tasks removed, on any surface)
    empties its finished tasks: a deleted task is never shown again by this worker, and by
    the others within `finished_cache_seconds`. Deletes are rare; the next reads refetch."""

    def forget(response: Response) -> Response:
        if request.method == "DELETE" and response.status_code < 400:
            finished.forget_all()
        return response

    app.after_request(forget)


def create_app(
    settings: GatewaySettings, client: Any = None, discovery: Discovery | None = None
) -> Flask:
    """The gateway app. `client` has JudicatorClient's interface (khala/rpc/stub.py is one in
    memory); by default one is built on `discovery`, itself opened from the settings."""
    if discovery is None:
        discovery = open_discovery(settings)
    if client is None:
        auth = NodeAuth.from_file(settings.cluster_secret_file)
        client = JudicatorClient(discovery, settings.rpc_timeout, auth=auth, name="gateway")
    app = Flask(__name__)
    app.request_class = StrictRequest
    limit = body_limit(settings)
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_MEMORY_SIZE"] = limit
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_metrics(app)  # /metrics and request timing (first: it times refusals too)
    finished = FinishedTasks(settings.finished_cache_seconds, settings.finished_cache_bytes)
    register_auth(app, settings, client, finished)  # API keys, before every request
    register_forgetting(app, finished)
    register_site(app)
    app.register_blueprint(seed_blueprint(settings, client, discovery, finished))
    app.register_blueprint(v2_blueprint(settings, client, more_paths()))
    app.register_blueprint(live_blueprint(settings, client))
    app.register_blueprint(meproc.meproc_blueprint(settings, client))
    app.register_blueprint(duxcore.duxcore_blueprint(settings, client))
    lookup = EndpointLookup(settings)  # executors' stream endpoints (running tasks' output)
    app.register_blueprint(procstar_blueprint(settings, client, lookup))
    app.register_blueprint(pow_rest.pow_blueprint(settings, client, lookup))
    app.register_error_handler(HTTPException, _route_error)
    app.register_error_handler(KhalaError, _refused)
    app.register_error_handler(Exception, _failed)
    return app
