"""Live routes (docs/streaming.md): the pow-1 websocket at /api/v2/pow and the task
event stream (Server-Sent Events) at /api/v2/tasks/{id}/events. Each holds a worker thread for
its life, so at most `max_streams` run at once per worker (503 beyond), each for at most
`max_stream_seconds`, and each message must be taken by the client within `write_timeout`
seconds (else it is cut off and the thread freed). One blueprint ("live"), answering errors as
API v2 does."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any

from flask import Blueprint, Response, request

from khala.config import GatewaySettings
from khala.gateway.live.follow import Chunk, Dropped, Final, Follower, StatusChange, TaskGone, Tick
from khala.gateway.live.session import PowEndpoint
from khala.gateway.v2.errors import ApiError, register_errors
from khala.rpc.client import JudicatorClient
from khala.streams.log import event_id, new_position, parse_event_id
from khala.streams.registry import EndpointLookup
from khala.taskjson import convert


def stream_event_id(position: dict[str, int], status: int | None) -> str:
    """An event's id: the four output offsets, then the last status sent (`-` none yet), so a
    resumed stream repeats neither output nor a status."""
    return f"{event_id(position)}:{'-' if status is None else status}"


def parse_stream_event_id(text: str) -> tuple[dict[str, int], int | None] | None:
    """(position, last status) of an event id; an id of offsets alone (older gateways) has no
    status. None when `text` is no event id."""
    offsets, _, status = text.strip().partition(":")
    position = parse_event_id(offsets)
    if position is None or not (status in ("", "-") or (status.isdigit() and len(status) < 3)):
        return None
    return position, int(status) if status.isdigit() else None


def sse(kind: str, position: dict[str, int], data: Any, status: int | None = None) -> bytes:
    return (f"event: {kind}\nid: {stream_event_id(position, status)}\n"
            f"data: {json.dumps(data, separators=(',', ':'))}\n\n").encode()


def message_window(environ: dict[str, Any]) -> Callable[[], None]:
    """What starts a new write deadline for the next message of a stream: the read-ahead
    worker's socket has one (serve/worker.py); elsewhere (Flask's test client) nothing."""
    restart = getattr(environ.get("gunicorn.socket"), "restart_write_window", None)
    return restart if callable(restart) else (lambda: None)


def chunk_data(chunk: Chunk) -> dict[str, Any]:
    data: dict[str, Any] = {"stream": chunk.stream, "offset": chunk.offset}
    try:
        data["text"] = chunk.data.decode("utf-8")
    except UnicodeDecodeError:
        data["base64"] = base64.b64encode(chunk.data).decode()
    return data


class EventStream:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient, lookup: EndpointLookup,
                 slots: threading.BoundedSemaphore) -> None:
        self.settings, self.client, self.lookup, self.slots = settings, client, lookup, slots

    def view(self, id: str) -> Response:  # noqa: A002 - route name
        last = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
        resumed = parse_stream_event_id(last) if last else (new_position(), None)
        if resumed is None:
            raise ApiError(400, "Last-Event-ID is not an event id of this stream")
        position, status = resumed
        follower = Follower(self.client, self.lookup, id, position, False,
                            self.settings.max_stream_seconds, status)
        try:
            task = follower.first()
        except TaskGone as exc:
            raise exc.error from exc
        if not self.slots.acquire(blocking=False):
            raise ApiError(503, "too many live streams on this gateway worker; retry")
        window = message_window(request.environ)
        response = Response(self._messages(follower, task, window),
                            mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        return response

    def _messages(self, follower: Follower, task: Any,
                  window: Callable[[], None]) -> Iterator[bytes]:
        """The events, each with a write deadline of its own."""
        events = self._events(follower, task)
        try:
            for message in events:
                window()
                yield message
        finally:
            events.close()  # releases the slot

    def _events(self, follower: Follower, task: Any) -> Generator[bytes, None, None]:
        try:
            yield b"retry: 1000\n\n"
            for event in follower.events(task):
                at, status = follower.position, follower.status
                if isinstance(event, StatusChange):
                    yield sse("status", at, {"status": convert.status_name(event.status),
                                             "status_code": event.status}, status)
                elif isinstance(event, Chunk):
                    yield sse("output", at, chunk_data(event), status)
                elif isinstance(event, Dropped):
                    yield sse("dropped", at, {"stream": event.stream, "offset": event.start,
                                              "length": event.end - event.start}, status)
                elif isinstance(event, Tick):
                    yield b": keepalive\n\n"
                elif isinstance(event, Final):
                    yield sse("task", at, convert.task_out(event.task).model_dump(mode="json"),
                              status)
        except TaskGone:
            yield b"event: error\ndata: {\"detail\":\"the task could no longer be read\"}\n\n"
        finally:
            follower.stop()
            self.slots.release()


def live_blueprint(settings: GatewaySettings, client: JudicatorClient) -> Blueprint:
    """The live routes (endpoints live.<view>)."""
    lookup = EndpointLookup(settings)
    slots = threading.BoundedSemaphore(max(1, settings.max_streams))
    pow_endpoint = PowEndpoint(settings, client, lookup, slots)
    events = EventStream(settings, client, lookup, slots)
    blueprint = Blueprint("live", __name__)
    # werkzeug matches websocket requests only to websocket rules: one of each, one view (which
    # answers a plain request 400 with a clear message)
    blueprint.add_url_rule("/api/v2/pow", "pow", pow_endpoint.view, methods=["GET"],
                           websocket=True)
    blueprint.add_url_rule("/api/v2/pow", "pow_http", pow_endpoint.view, methods=["GET"])
    blueprint.add_url_rule("/api/v2/tasks/<id>/events", "events", events.view, methods=["GET"])
    register_errors(blueprint)
    return blueprint
