"""How the Duxcore routes answer what they cannot do: the seed gives no error shape, and its
documents are Docker's, so errors are Docker Engine's: `{"message": "…"}` with the HTTP status
(400 bad input, 401/403 the core key, 404 no such service, 409 a state that refuses it, 413 a
body too large, 503 no judicator)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from khala.gateway import adapter_errors
from khala.gateway.v2.errors import ApiError

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


def on_http_error(exc: HTTPException) -> Response:
    """Also the answer to requests under the adapter's prefix that no route takes."""
    return adapter_errors.http_error(answer, exc, "page not found")


def register_errors(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(DuxError, on_dux_error)
    blueprint.register_error_handler(ApiError, on_body_error)
    adapter_errors.register(blueprint, answer, on_http_error)
