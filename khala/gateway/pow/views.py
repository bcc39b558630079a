"""pow-1's REST views: the call of a process, its status and output, its input and its end.
The websocket's call resolution and result messages (khala/gateway/live/calls.py,
session.outcome) serve both halves, so a process is the same task either way."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from khala.config import GatewaySettings
from khala.errors import Conflict, KhalaError, NotFound, RemoteError, Unavailable
from khala.gateway import auth
from khala.gateway.auth import KeyRefused
from khala.gateway.live import calls, oneshot
from khala.gateway.live.follow import stored_output
from khala.gateway.live.session import outcome
from khala.model import Status, Task
from khala.rpc.client import JudicatorClient
from khala.streams.log import STREAMS
from khala.streams.registry import EndpointLookup

log = logging.getLogger(__name__)

START_WAIT = 10.0  # seconds input (or its close) waits for a queued process to start
POLL_MIN, POLL_MAX = 0.02, 0.5


class PowError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(text, status=status, mimetype="text/plain", headers=headers or {})


def _decoded(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class PowViews:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient,
                 lookup: EndpointLookup) -> None:
        self.client, self.lookup = client, lookup
        self.calls = calls.load_calls(settings.pow_calls)

    def _find(self, ref: str) -> Task:
        try:
            task = self.client.find(ref)
        except NotFound:
            raise PowError(404, "process not found") from None
        if not auth.may_see(task.user):
            raise PowError(404, "process not found")
        return task

    def new(self) -> Response:
        try:
            call = calls.resolve(self.calls, *calls.message(request.get_data(cache=False)))
            ref = call.ref or calls.submit(self.client, call.body, as_key_user=True)  # type: ignore[arg-type]
        except calls.Rejected as exc:
            raise PowError(400, str(exc)) from exc
        self._find(ref)  # an attach names an existing task
        return jsonify(ref)

    def status(self, id: str) -> Response:  # noqa: A002 - route name
        task = self._find(id)
        result = outcome(task) if task.done else {"status": "pending"}
        return jsonify({"result": result, "buffer": self._buffer(task)})

    def _buffer(self, task: Task) -> str:
        """Every output of the process so far, as the websocket sends it: compile's, then
        execute's (a running one's as its executor holds it, in the order it was written)."""
        if task.done:
            return "".join(_decoded(stored_output(task, name)) for name in STREAMS)
        try:
            now = oneshot.snapshot(self.lookup, task)
        except oneshot.Unreachable:
            return ""
        return _decoded(b"".join(data for _, data in now.order))

    def input(self, id: str) -> Response:  # noqa: A002
        data = request.get_data(cache=False)
        self._when_running(id, lambda task: oneshot.send_input(self.lookup, task, data))
        return _text(200, "input sent")

    def close_input(self, id: str) -> Response:  # noqa: A002
        self._when_running(id, lambda task: oneshot.close_input(self.lookup, task))
        return _text(200, "input closed")

    def _when_running(self, ref: str, act: Callable[[Task], None]) -> None:
        """Do `act` on the task once its executor holds it (at most START_WAIT seconds)."""
        deadline, delay = time.monotonic() + START_WAIT, POLL_MIN
        while True:
            task = self._find(ref)
            if task.done:
                raise PowError(400, "the process has ended")
            if not task.execute.interactive:
                raise PowError(400, "the process takes no input (its task is not interactive)")
            if task.executor and task.status in (Status.COMPILING, Status.RUNNING):
                try:
                    act(task)
                    return
                except oneshot.NoInput as exc:
                    raise PowError(400, str(exc)) from exc
                except oneshot.Unreachable as exc:
                    problem = str(exc)
            else:
                problem = "the process has not started yet"
            if time.monotonic() + delay > deadline:
                raise PowError(503, f"{problem}; try again")
            time.sleep(delay)
            delay = min(POLL_MAX, delay * 2)

    def cancel(self, id: str) -> Response:  # noqa: A002
        try:
            self.client.stop(id)
        except NotFound:
            raise PowError(404, "process not found") from None
        except Conflict:
            raise PowError(400, "the process has ended") from None
        return _text(200, "process cancelled")


def on_pow_error(exc: PowError) -> Response:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return _text(exc.status, exc.text, headers)


def on_refusal(exc: KhalaError) -> Response:
    if isinstance(exc, Unavailable):
        log.warning("%s %s: %s", request.method, request.path, exc)
        what = "a judicator could not do it" if isinstance(exc, RemoteError) else (
            "no judicator answered")
        return _text(503, f"{what}; try again", {"Retry-After": "1"})
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return _text(exc.http_status, "internal error")
    if isinstance(exc, NotFound):
        return _text(404, "process not found")
    headers = exc.headers if isinstance(exc, KeyRefused) else None
    return _text(400 if exc.http_status == 422 else exc.http_status, str(exc), headers)


def on_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    return _text(status, f"{status} {exc.name}: {request.method} {request.path}")


def on_error(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    return _text(500, "internal error")


def register_errors(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(PowError, on_pow_error)
    blueprint.register_error_handler(KhalaError, on_refusal)
    blueprint.register_error_handler(HTTPException, on_http_error)
    blueprint.register_error_handler(Exception, on_error)
