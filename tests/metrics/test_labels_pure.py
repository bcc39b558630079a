"""The fixed label sets of khala/metrics/labels.py (pure)."""

from __future__ import annotations

from khala.metrics import labels


def test_http_methods() -> None:
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        assert labels.http_method(method) == method
    for method in ("get", "FOO", "TRACE", "CONNECT", "PROPFIND", "", "G" * 1000):
        assert labels.http_method(method) == labels.OTHER


def test_http_statuses() -> None:
    for code in (200, 201, 204, 400, 401, 404, 405, 413, 422, 429, 500, 503):
        assert labels.http_status(code) == str(code)
    for code in (0, 99, 299, 600, 999, -1, 10**9):
        assert labels.http_status(code) == labels.OTHER


def test_routes_and_rpc_methods() -> None:
    routes = {"/api/task", "/api/v2/tasks/<id>"}
    assert labels.http_route("/api/v2/tasks/<id>", routes) == "/api/v2/tasks/<id>"
    assert labels.http_route(None, routes) == labels.UNMATCHED
    assert labels.http_route("/elsewhere", routes) == labels.OTHER
    assert labels.rpc_method("ping", {"ping"}) == "ping"
    assert labels.rpc_method("invented", {"ping"}) == labels.OTHER
