"""How the Procstar routes answer what they cannot do: `{"errors": [{"status", "detail"}]}`
(JSON API's shape, `status` the HTTP status as a number) with that HTTP status."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from khala.gateway import adapter_errors

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


def on_http_error(exc: HTTPException) -> Response:
    """Also the answer to requests under the adapter's prefix that no route takes."""
    return adapter_errors.http_error(answer, exc, "no such route")


def register_errors(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(ProcError, on_proc_error)
    adapter_errors.register(blueprint, answer, on_http_error)
