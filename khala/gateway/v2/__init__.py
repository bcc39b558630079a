"""API v2: JSON routes under /api/v2, the OpenAPI document at /openapi.json and Swagger UI at
/docs/ (assets vendored in swagger_ui/, see scripts/vendor-swagger-ui.sh). Stateless: every
request is a judicator call (the typed client's API v2 methods, khala/rpc/tasks_client.py)."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, jsonify, request, send_from_directory

from khala.config import GatewaySettings
from khala.gateway.v2.errors import PREFIX, register_v2_errors
from khala.gateway.v2.spec import openapi, routes
from khala.gateway.v2.views import V2Api

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


def register_v2(app: Flask, settings: GatewaySettings, client: Any) -> None:
    """Add API v2 to the gateway app; call after the app's own error handlers exist."""
    api = V2Api(settings, client)
    app.extensions["khala_v2"] = api
    document = openapi(settings.max_task_wait)
    body_limit = settings.max_task_size * 4 // 3 + BODY_OVERHEAD

    for route in routes(settings.max_task_wait):
        app.add_url_rule(route.rule, f"v2_{route.view}", getattr(api, route.view),
                         methods=[route.method.upper()])

    def spec() -> Response:
        return jsonify(document)

    def docs_page() -> Response:
        return Response(DOCS_PAGE, mimetype="text/html")

    def docs_asset(name: str) -> Response:
        return send_from_directory(ASSETS, name, max_age=3600)

    def v2_body_limit() -> None:
        if request.path.startswith(PREFIX + "/"):
            request.max_content_length = body_limit

    app.add_url_rule("/openapi.json", "v2_openapi", spec, methods=["GET"])
    app.add_url_rule("/docs/", "v2_docs", docs_page, methods=["GET"])
    app.add_url_rule("/docs/<path:name>", "v2_docs_asset", docs_asset, methods=["GET"])
    app.before_request(v2_body_limit)
    register_v2_errors(app)
