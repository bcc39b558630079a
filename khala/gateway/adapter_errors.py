"""What every seed adapter with an error shape of its own (Procstar, Duxcore) answers for the
failures they share: a refusal of Khala's, a route or method no route takes, a crash. Each
adapter passes its own `answer(status, text, headers)`, which writes its shape."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from khala.errors import KhalaError, RemoteError, Unavailable
from khala.gateway.auth import KeyRefused

log = logging.getLogger(__name__)

Answer = Callable[[int, str, "dict[str, str] | None"], Response]


def refusal(answer: Answer, exc: KhalaError) -> Response:
    """Khala's refusal in the adapter's shape: no judicator → 503 with Retry-After, a failure
    of ours → its status without detail, Khala's 422 (invalid input) → 400 as the seeds say."""
    if isinstance(exc, Unavailable):
        log.warning("%s %s: %s", request.method, request.path, exc)
        what = ("a judicator could not do it" if isinstance(exc, RemoteError)
                else "no judicator answered")
        return answer(503, f"{what}; retry later", {"Retry-After": "1"})
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return answer(exc.http_status, "internal error", None)
    status = 400 if exc.http_status == 422 else exc.http_status
    return answer(status, str(exc), exc.headers if isinstance(exc, KeyRefused) else None)


def http_error(answer: Answer, exc: HTTPException, not_found: str) -> Response:
    """Werkzeug's errors (also a path under the adapter's prefix that no route takes)."""
    status = exc.code or 500
    text = {404: f"{not_found}: {request.method} {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: "the request body is larger than the limit"}.get(status, exc.name)
    return answer(status, text, None)


def register(blueprint: Blueprint, answer: Answer,
             on_http: Callable[[HTTPException], Response]) -> None:
    """The shared handlers on `blueprint` (register the adapter's own exceptions first)."""

    def on_refusal(exc: KhalaError) -> Response:
        return refusal(answer, exc)

    def on_error(exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        return answer(500, "internal error", None)

    blueprint.register_error_handler(KhalaError, on_refusal)
    blueprint.register_error_handler(HTTPException, on_http)
    blueprint.register_error_handler(Exception, on_error)
