"""How the Procstar routes answer what they cannot do: `{"errors": [{"status", "detail"}]}`
(JSON API's shape, `status` the HTTP status as a number) with that HTTP status."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from khala.errors import KhalaError, RemoteError, Unavailable
from khala.gateway.auth import KeyRefused

log = logging.getLogger(__name__)

PREFIX = "/procs"


class ProcError(Exception):
    """An answer with an error status the Procstar routes decide themselves."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def answer(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"errors": [{"status": status, "detail": detail}]})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def on_proc_error(exc: ProcError) -> Response:
    return answer(exc.status, exc.detail)


def on_refusal(exc: KhalaError) -> Response:
    if isinstance(exc, Unavailable):
        log.warning("%s %s: %s", request.method, request.path, exc)
        what = ("a judicator could not do it" if isinstance(exc, RemoteError)
                else "no judicator answered")
        return answer(503, f"{what}; retry later", {"Retry-After": "1"})
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return answer(exc.http_status, "internal error")
    # Procstar refuses what it cannot parse with 400; Khala's 422 (an invalid task) is that
    status = 400 if exc.http_status == 422 else exc.http_status
    return answer(status, str(exc), exc.headers if isinstance(exc, KeyRefused) else None)


def on_http_error(exc: HTTPException) -> Response:
    """Also the answer to requests under /procs no route takes."""
    status = exc.code or 500
    detail = {404: f"no such route: {request.method} {request.path}",
              405: f"{request.method} is not allowed on {request.path}",
              413: "the request body is larger than the limit"}.get(status, exc.name)
    return answer(status, detail)


def on_error(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    return answer(500, "internal error")


def register_errors(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(ProcError, on_proc_error)
    blueprint.register_error_handler(KhalaError, on_refusal)
    blueprint.register_error_handler(HTTPException, on_http_error)
    blueprint.register_error_handler(Exception, on_error)
