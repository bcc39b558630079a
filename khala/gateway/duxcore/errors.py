"""How the Duxcore routes answer what they cannot do: the seed gives no error shape, and its
documents are Docker's, so errors are Docker Engine's: `{"message": "…"}` with the HTTP status
(400 bad input, 401/403 the core key, 404 no such service, 409 a state that refuses it, 413 a
body too large, 503 no judicator)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from khala.errors import KhalaError, RemoteError, Unavailable
from khala.gateway.auth import KeyRefused
from khala.gateway.v2.errors import ApiError

log = logging.getLogger(__name__)

PREFIXES = ("/service", "/docker")


class DuxError(Exception):
    """An answer with an error status the Duxcore routes decide themselves."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def answer(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"message": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def on_dux_error(exc: DuxError) -> Response:
    return answer(exc.status, exc.message)


def on_body_error(exc: ApiError) -> Response:
    """The shared body spool's refusals (too large, empty)."""
    return answer(exc.status, exc.detail)


def on_refusal(exc: KhalaError) -> Response:
    if isinstance(exc, (RemoteError, Unavailable)):
        log.warning("%s %s: %s", request.method, request.path, exc)
        what = ("a judicator could not do it" if isinstance(exc, RemoteError)
                else "no judicator answered")
        return answer(503, f"{what}; retry later", {"Retry-After": "1"})
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return answer(exc.http_status, "internal error")
    status = 400 if exc.http_status == 422 else exc.http_status  # Docker's bad input is 400
    return answer(status, str(exc), exc.headers if isinstance(exc, KeyRefused) else None)


def on_http_error(exc: HTTPException) -> Response:
    """Also the answer to requests under /service and /docker that no route takes."""
    status = exc.code or 500
    message = {404: f"page not found: {request.method} {request.path}",
               405: f"{request.method} is not allowed on {request.path}",
               413: "the request body is larger than the limit"}.get(status, exc.name)
    return answer(status, message)


def on_error(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    return answer(500, "internal error")


def register_errors(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(DuxError, on_dux_error)
    blueprint.register_error_handler(ApiError, on_body_error)
    blueprint.register_error_handler(KhalaError, on_refusal)
    blueprint.register_error_handler(HTTPException, on_http_error)
    blueprint.register_error_handler(Exception, on_error)
