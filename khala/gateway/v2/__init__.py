"""API v2: JSON routes under /api/v2, the OpenAPI document at /openapi.json and Swagger UI at
/docs/ (assets vendored in swagger_ui/, see scripts/vendor-swagger-ui.sh), one blueprint
("v2") with its own error answers (errors.py). Stateless: every request is a judicator call
through the typed client (khala/rpc/client.py)."""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_from_directory

from khala.config import GatewaySettings
from khala.gateway.v2.errors import register_errors
from khala.gateway.v2.images import ImageViews
from khala.gateway.v2.jobs import JobViews
from khala.gateway.v2.problems import ProblemViews
from khala.gateway.v2.spec import openapi, routes
from khala.gateway.v2.views import TaskViews
from khala.rpc.client import JudicatorClient

ASSETS = os.path.join(os.path.dirname(__file__), "swagger_ui")
# v2 bodies carry files in base64 (4/3 of their size): room for a task of the largest size.
BODY_OVERHEAD = 1024 * 1024

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Khala API</title>
<link rel="icon" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""


def body_limit(settings: GatewaySettings) -> int:
    """The largest request body of API v2: a task of the largest size in base64, and room."""
    return settings.max_task_size * 4 // 3 + BODY_OVERHEAD


def v2_blueprint(settings: GatewaySettings, client: JudicatorClient,
                 more_paths: dict[str, dict[str, Any]] | None = None) -> Blueprint:
    """API v2's routes (endpoints v2.<view>), its documentation (with `more_paths`, the
    routes the app serves beside it) and its error answers."""
    tasks = TaskViews(settings, client)
    views = {"jobs": JobViews(settings, client), "problems": ProblemViews(settings, client),
             "images": ImageViews(settings, client)}
    document = openapi(settings.max_task_wait, more_paths)
    limit = body_limit(settings)
    blueprint = Blueprint("v2", __name__)

    for route in routes(settings.max_task_wait):
        owner = views.get(route.tag, tasks)  # every other tag is a task's
        blueprint.add_url_rule(route.rule, route.view, getattr(owner, route.view),
                               methods=[route.method.upper()])

    def spec() -> Response:
        return jsonify(document)

    def docs_page() -> Response:
        return Response(DOCS_PAGE, mimetype="text/html")

    def docs_asset(name: str) -> Response:
        return send_from_directory(ASSETS, name, max_age=3600)

    def v2_body_limit() -> None:
        request.max_content_length = limit

    blueprint.add_url_rule("/openapi.json", "openapi", spec, methods=["GET"])
    blueprint.add_url_rule("/docs/", "docs", docs_page, methods=["GET"])
    blueprint.add_url_rule("/docs/<path:name>", "docs_asset", docs_asset, methods=["GET"])
    blueprint.before_request(v2_body_limit)
    register_errors(blueprint)
    return blueprint
