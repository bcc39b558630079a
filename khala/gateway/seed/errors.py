"""How the seed API (seed 004) answers what it cannot do: the endpoint's JSON with its `result`
code and its other keys null/empty, on HTTP 200, as the seed clients expect. Exceptions: a
file download answers 404/503 in plain text, and a refused API key keeps its 401/403."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from khala.errors import KhalaError, Unavailable
from khala.gateway.auth import KeyRefused
from khala.model import Code

log = logging.getLogger(__name__)

# The answer of each JSON endpoint when it cannot do its work: the seed's shape, keys null/empty.
EMPTY_ANSWERS: dict[str, dict[str, Any]] = {
    "add": {"id": None},
    "cancel": {},
    "search": {"pages": 0, "tasks": []},
    "get": {"task": None},
    "executors": {"executors": []},
    "judicators": {"judicators": []},
}


def answer(view: str, code: int, error: str = "") -> Response:
    """The JSON answer of `view` with result `code` and its other keys null/empty; a refusal
    adds `error`, the reason naming the field (the seed's own keys stay as they are)."""
    body = {"result": int(code), **EMPTY_ANSWERS.get(view, {})}
    if error:
        body["error"] = error
    return jsonify(body)


def route_error(status: int, message: str) -> Response:
    """A request no endpoint takes (an unknown path: 404, a wrong method: 405), in the seed
    shape: `{"result": 2}` (not exist) for 404, `{"result": 4}` (invalid input) otherwise, with
    the HTTP status kept and an `error` text."""
    code = Code.NOT_EXIST if status == 404 else Code.INVALID_INPUT
    reply = jsonify({"result": int(code), "error": message})
    reply.status_code = status
    return reply


def _view() -> str:
    return (request.endpoint or "").rsplit(".", 1)[-1]


def _is_download() -> bool:
    return _view() == "get" and bool(request.args.get("file"))


def _text(body: str, status: int) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def on_refusal(exc: KhalaError) -> Response:
    """Every KhalaError raised by a seed view, the key check or the client."""
    if isinstance(exc, KeyRefused):
        reply = jsonify({"result": int(exc.code), "error": str(exc)})
        reply.status_code = exc.http_status
        reply.headers.update(exc.headers)
        return reply
    if isinstance(exc, Unavailable):
        log.warning("%s %s: %s", request.method, request.path, exc)
    elif exc.code == Code.ERROR:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
    else:
        log.debug("%s %s refused: %s", request.method, request.path, exc)
    if _is_download():
        return _text("unavailable\n", 503) if exc.code == Code.ERROR else _text("not found\n", 404)
    refused = exc.code in (Code.INVALID_INPUT, Code.TOO_LARGE)  # what was wrong, by field
    return answer(_view(), exc.code, str(exc) if refused else "")


def on_http_error(exc: HTTPException) -> Response | HTTPException:
    """A body beyond the limit: result 3; a malformed request to a JSON endpoint: result 4."""
    if exc.code == 413:
        return answer(_view(), Code.TOO_LARGE,
                      "the request is larger than the gateway takes (max_task_size)")
    if _view() in EMPTY_ANSWERS and not _is_download() and exc.code and 400 <= exc.code < 500:
        return answer(_view(), Code.INVALID_INPUT,
                      f"malformed request: {exc.description or exc.name}")
    if exc.code is None:
        return exc
    return route_error(exc.code, f"{exc.code} {exc.name}: {request.method} {request.path}")


def on_error(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    if _is_download():
        return _text("internal error\n", 500)
    return answer(_view(), Code.ERROR)


def register_errors(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(KhalaError, on_refusal)
    blueprint.register_error_handler(HTTPException, on_http_error)
    blueprint.register_error_handler(Exception, on_error)

