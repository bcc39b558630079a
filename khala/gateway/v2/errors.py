"""How API v2 answers what it cannot do: the envelope `{"errors": [{"status", "title",
"detail"}]}` with the HTTP status of the error (khala/errors.py states it once per class).
`register_errors` gives a blueprint's routes that shape for every failure (validation, a
judicator's refusal, a refused key, an oversize body, a judicator that cannot be reached, our
own bugs); `on_http_error` also answers the requests under /api/v2 no route takes."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from khala.errors import KhalaError, RemoteError, Unavailable
from khala.gateway.auth import KeyRefused

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
    """An answer with an error status that API v2 itself decides (a malformed request, a state
    the route refuses); raised by its views. The judicator's refusals stay KhalaErrors."""

    def __init__(self, status: int, detail: str, title: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.retry_after = retry_after  # seconds, sent as Retry-After


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


def refusal_item(exc: KhalaError) -> tuple[int, dict[str, str]]:
    """The status and the error item of a KhalaError (a batch item answers it the same way)."""
    if isinstance(exc, RemoteError):
        return 503, error_item(503, "a judicator could not do it; retry later")
    if isinstance(exc, Unavailable):
        return 503, error_item(503, "no judicator answered; retry later")
    if exc.http_status >= 500:
        return exc.http_status, error_item(exc.http_status, "internal error")
    return exc.http_status, error_item(exc.http_status, str(exc))


def on_api_error(exc: ApiError) -> Response:
    headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    return error_response(exc.status, [error_item(exc.status, exc.detail, exc.title)], headers)


def on_refusal(exc: KhalaError) -> Response:
    status, item = refusal_item(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, KeyRefused):
        headers = exc.headers
    elif isinstance(exc, Unavailable):
        log.warning("%s %s: %s", request.method, request.path, exc)
        headers = {"Retry-After": "1"}
    elif status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
    return error_response(status, [item], headers)


def on_http_error(exc: HTTPException) -> Response:
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


def on_error(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    return error_response(500, [error_item(500, "internal error")])


def register_errors(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(ApiError, on_api_error)
    blueprint.register_error_handler(KhalaError, on_refusal)
    blueprint.register_error_handler(HTTPException, on_http_error)
    blueprint.register_error_handler(Exception, on_error)
