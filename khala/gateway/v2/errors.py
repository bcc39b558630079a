"""The API v2 error envelope `{"errors": [{"status", "title", "detail"}]}` and the handlers that
give every failure under /api/v2 that shape (validation, oversize bodies, unknown routes, a
judicator that cannot be reached, our own bugs). Other paths keep the app's own handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from khala.errors import Unavailable

log = logging.getLogger(__name__)

PREFIX = "/api/v2"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class ApiError(Exception):
    """An answer with an error status; raised by the v2 views."""

    def __init__(self, status: int, detail: str, title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")


def error_item(status: int, detail: str, title: str | None = None) -> dict[str, str]:
    return {"status": str(status), "title": title or TITLES.get(status, "Error"),
            "detail": detail}


def error_response(status: int, items: list[dict[str, str]],
                   headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"errors": items})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_items(exc: ValidationError) -> list[dict[str, str]]:
    items = []
    for error in exc.errors(include_url=False)[:50]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "body"
        items.append(error_item(422, f"{where}: {error.get('msg', 'invalid')}"))
    return items


def _in_v2() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def register_v2_errors(app: Flask) -> None:
    """Wrap the app's handlers: under /api/v2 answer the envelope, elsewhere defer to them."""
    previous: dict[Any, Callable[[Any], Any]] = {}
    for key in (Unavailable, HTTPException, Exception):
        handler = app.error_handler_spec[None][None].get(key)
        if handler is not None:
            previous[key] = handler

    def defer(key: Any, exc: Exception) -> Any:
        handler = previous.get(key)
        if handler is not None:
            return handler(exc)
        if isinstance(exc, HTTPException):
            return exc
        raise exc

    def on_api_error(exc: ApiError) -> Response:
        return error_response(exc.status, [error_item(exc.status, exc.detail, exc.title)])

    def on_unavailable(exc: Unavailable) -> Any:
        if not _in_v2():
            return defer(Unavailable, exc)
        log.warning("%s %s: %s", request.method, request.path, exc)
        return error_response(503, [error_item(503, "no judicator answered; retry later")],
                              {"Retry-After": "1"})

    def on_http_error(exc: HTTPException) -> Any:
        if not _in_v2():
            return defer(HTTPException, exc)
        status = exc.code or 500
        headers = {}
        if status == 405 and exc.get_response().headers.get("Allow"):
            headers["Allow"] = exc.get_response().headers["Allow"]
        detail = {
            404: f"no such route: {request.method} {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: "the request body is larger than the limit",
        }.get(status, exc.description or TITLES.get(status, "error"))
        return error_response(status, [error_item(status, detail)], headers)

    def on_error(exc: Exception) -> Any:
        if not _in_v2():
            return defer(Exception, exc)
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, [error_item(500, "internal error")])

    app.register_error_handler(ApiError, on_api_error)
    app.register_error_handler(Unavailable, on_unavailable)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(Exception, on_error)
    # Handlers registered for a status code win over class handlers in Flask: wrap those too.
    for code, handlers in list(app.error_handler_spec[None].items()):
        if code is None:
            continue
        for cls, handler in list(handlers.items()):
            handlers[cls] = _scoped(handler, on_http_error)


def _scoped(
    handler: Callable[[Any], Any], v2_handler: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    def scoped(exc: Any) -> Any:
        return v2_handler(exc) if _in_v2() else handler(exc)

    return scoped
