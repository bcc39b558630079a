"""The pow-1 websocket (Process Over Websocket, seed 002) at /api/v2/pow: docs/streaming.md.

One session = one call. The first frame is a binary call message; then text frames carry output
(server → client) and input (client → server, interactive tasks only), binary frames carry the
signals `close` and `cancel`; the server ends with one binary result message and a close frame
(1000, empty reason).

With API keys on, a key of any role may open a session (auth.py); then a read key may only
attach, a submit key submits as its own user and attaches to its own user's tasks only (another
user's task is "no task", as everywhere), and only admin and submit keys may cancel.
"""

from __future__ import annotations

import codecs
import json
import logging
import threading
from typing import Any

from flask import Response, request

from khala.config import GatewaySettings
from khala.errors import REFUSALS, NotFound, RemoteError
from khala.gateway import auth
from khala.gateway.live import calls
from khala.gateway.live.calls import Rejected, fill  # noqa: F401 (fill: part of this API)
from khala.gateway.live.follow import Chunk, Dropped, Final, Follower, TaskGone
from khala.gateway.live.websocket import Closed, WebSocket, offered_protocols, wants_websocket
from khala.gateway.v2.errors import ApiError
from khala.model import Status, Task
from khala.rpc.client import JudicatorClient
from khala.streams.log import new_position
from khala.streams.registry import EndpointLookup
from khala.taskjson import convert

log = logging.getLogger(__name__)

PROTOCOL = "pow-1"
#: A client's cancel that no judicator answered is tried again every second, at most this often.
#: (An answered cancel is final: the store serialises every write to a task, also on FerretDB;
#: see khala/store/mongo/ferret.py.)
CANCEL_TRIES = 10
CALL_WAIT = 10.0  # seconds a client has to send its call after the handshake
MAX_CONTROL = 64 * 1024  # largest binary (control) message, bytes
MAX_REASON = 64 * 1024  # characters of a compiler message in a rejection


class Hijacked(Response):
    """What the view returns after a websocket: makes gunicorn drop the connection instead of
    writing an HTTP response on it (its gthread worker closes a connection on StopIteration)."""

    def __call__(self, environ: Any, start_response: Any) -> Any:
        raise StopIteration


def _text(data: str | bytes) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")


def outcome(task: Task) -> dict[str, Any]:
    """The result message for a finished task."""
    if task.status == Status.SUCCESS:
        return {"status": "fulfilled", "value": convert.task_out(task).model_dump(mode="json")}
    r = task.result
    step = r.execute_report if r is not None else None
    if task.status == Status.COMPILE_FAILED and r is not None:
        message = (_text(r.compile_error).strip() or _text(r.compile_output).strip())
        message = message[:MAX_REASON]
        reason = f"compile failed: {message}" if message else "compile failed"
    elif task.status == Status.RUN_FAILED:
        reason = f"run failed: {step.reason if step else 'unknown'}"
        if step is not None and step.exit_code is not None:
            reason += f" (exit code {step.exit_code})"
        elif step is not None and step.signal is not None:
            reason += f" (signal {step.signal})"
    elif task.status == Status.CANCELLED:
        reason = "cancelled"
    else:
        reason = "internal error: the task could not run to its end"
    return {"status": "rejected", "reason": reason}


class PowEndpoint:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient, lookup: EndpointLookup,
                 slots: threading.BoundedSemaphore) -> None:
        self.settings, self.client, self.lookup, self.slots = settings, client, lookup, slots
        self.calls = calls.load_calls(settings.pow_calls)

    def view(self) -> Response:
        environ = request.environ
        if not wants_websocket(environ):
            raise ApiError(400, "pow-1 needs a websocket upgrade (Upgrade: websocket)")
        if PROTOCOL not in offered_protocols(environ):
            raise ApiError(400, "the websocket subprotocol pow-1 is required "
                                "(Sec-WebSocket-Protocol: pow-1)")
        who = auth.principal()
        cancel_on_disconnect = request.args.get("cancel_on_disconnect") in ("1", "true")
        if cancel_on_disconnect and who is not None and who.role not in auth.WRITE:
            raise auth.KeyRefused(403, f"a {who.role} key may not cancel tasks")
        if not self.slots.acquire(blocking=False):
            raise ApiError(503, "too many live streams on this gateway worker; retry")
        try:
            ws = WebSocket.accept(environ, PROTOCOL, self.settings.write_timeout)
            Session(self, ws, cancel_on_disconnect, who).run()
        except Closed:
            pass
        finally:
            self.slots.release()
        return Hijacked()


class Session:
    def __init__(self, endpoint: PowEndpoint, ws: WebSocket, cancel_on_disconnect: bool,
                 who: auth.Principal | None = None) -> None:
        self.endpoint, self.ws = endpoint, ws
        self.client = endpoint.client
        self.cancel_on_disconnect = cancel_on_disconnect
        self.who = who  # the API key's principal; None: keys are off
        self.error: str | None = None  # a protocol error of the client ends the session
        self.gone = False  # the client closed or lost the connection
        self.ended = threading.Event()
        self.ref = ""

    def run(self) -> None:
        try:
            follower, task = self._start()
        except Rejected as exc:
            self._finish({"status": "rejected", "reason": str(exc)})
            return
        reader = threading.Thread(target=self._read, args=(follower,), daemon=True,
                                  name="khala-pow-reader")
        reader.start()
        result = self._relay(follower, task)
        self.ended.set()
        if self.gone:
            self.ws.shutdown()
            return
        if self.error is not None:
            result = {"status": "rejected", "reason": self.error}
        elif result is None:
            result = {"status": "rejected", "reason": "the stream's time limit passed "
                      f"({self.endpoint.settings.max_stream_seconds:g} s); the task goes on"}
        self._finish(result)
        reader.join(2.0)

    def _finish(self, result: dict[str, Any]) -> None:
        try:
            self.ws.send_bytes(json.dumps(result).encode())
            self.ws.close(1000, "")
        except Closed:
            pass
        self.ended.set()
        self.ws.sock.settimeout(2.0)  # wait briefly for the client's close frame
        try:
            while True:
                self.ws.receive()
        except Closed:
            pass
        self.ws.shutdown()

    # ------------------------------------------------------------------ call

    def _start(self) -> tuple[Follower, Task]:
        self.ws.sock.settimeout(CALL_WAIT)
        try:
            kind, data = self._message()
        except TimeoutError as exc:
            raise Rejected(f"no call message within {CALL_WAIT:g} s") from exc
        self.ws.sock.settimeout(None)
        if kind != "bytes":
            raise Rejected("the first frame must be a binary call message "
                           '{"call": NAME, "params": [STRING, …]}')
        call = calls.resolve(self.endpoint.calls, *calls.message(data))
        want_input = False
        if call.body is None:
            self.ref = call.ref
        else:
            if not self._writes():
                raise Rejected("a read key may not submit tasks")
            try:  # a submit key's task is its own user's
                self.ref = calls.submit(self.client, call.body, as_key_user=True)
            except auth.KeyRefused as exc:
                raise Rejected(str(exc)) from exc
            want_input = call.body.execute.interactive
        follower = Follower(self.client, self.endpoint.lookup, self.ref, new_position(),
                            want_input, self.endpoint.settings.max_stream_seconds)
        try:
            task = follower.first()
        except TaskGone as exc:
            raise Rejected(str(exc.error) if isinstance(exc.error, NotFound)
                           else "the task could not be read") from exc
        if self.who is not None and self.who.role == "submit" and task.user != self.who.user:
            raise Rejected(str(NotFound(f"no task {self.ref!r}")))  # nor that it exists
        return follower, task

    def _writes(self) -> bool:
        """Whether the session's key may submit and cancel (read keys only follow)."""
        return self.who is None or self.who.role in auth.WRITE

    def _message(self) -> tuple[str, Any]:
        """The next whole message: ("text", str) or ("bytes", bytes) (bounded)."""
        parts: list[Any] = []
        size = 0
        while True:
            frame = self.ws.receive()
            parts.append(frame.data)
            size += len(frame.data)
            if isinstance(frame.data, str):
                if frame.message_finished:
                    return "text", "".join(parts)
            else:
                if size > MAX_CONTROL:
                    raise Rejected(f"a control message is larger than {MAX_CONTROL} bytes")
                if frame.message_finished:
                    return "bytes", b"".join(parts)

    # ------------------------------------------------------------------ running

    def _relay(self, follower: Follower, task: Task) -> dict[str, Any] | None:
        decoders: dict[str, Any] = {}
        try:
            for event in follower.events(task):
                if isinstance(event, Chunk):
                    decoder = decoders.setdefault(
                        event.stream, codecs.getincrementaldecoder("utf-8")("replace"))
                    text = decoder.decode(event.data)
                    if text:
                        self.ws.send_text(text)
                elif isinstance(event, Dropped):
                    self.ws.send_text(f"\n[khala] {event.end - event.start} bytes of "
                                      f"{event.stream} dropped (client too slow)\n")
                elif isinstance(event, Final):
                    return outcome(event.task)
        except Closed:
            self.gone = True
            self._client_gone()
        except TaskGone:
            return {"status": "rejected", "reason": "the task could no longer be read"}
        finally:
            follower.stop()
        return None

    def _read(self, follower: Follower) -> None:
        """Client frames: input text, close/cancel signals; a malformed one ends the session."""
        try:
            while not self.ended.is_set():
                kind, data = self._message()
                if kind == "text":
                    if follower.want_input and data:
                        follower.send_input(data.encode())
                    continue
                self._control(follower, data)
        except Rejected as exc:
            self.error = str(exc)
            follower.stop()
        except Closed:
            if not self.ended.is_set():
                self.gone = True
                follower.stop()
                self._client_gone()

    def _control(self, follower: Follower, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError as exc:
            raise Rejected(f"malformed control message (not JSON): {exc}") from exc
        signal = message.get("signal") if isinstance(message, dict) else None
        if signal == "close":
            follower.close_input()
        elif signal == "cancel":
            if not self._writes():
                raise Rejected("a read key may not cancel the task")
            threading.Thread(target=self._cancel, name="khala-pow-cancel", daemon=True).start()
        else:
            raise Rejected('malformed control message: expected {"signal": "close"} or '
                           '{"signal": "cancel"}')

    def _cancel(self) -> None:
        for _ in range(CANCEL_TRIES):
            try:
                self.client.stop(self.ref)
                return
            except REFUSALS:  # done, already ended, or gone: nothing to retry
                return
            except RemoteError:
                log.warning("cancel of %s failed at the judicator (store)", self.ref)
            except Exception:  # no judicator answered: the next try may reach one
                log.warning("cancel of %s failed", self.ref, exc_info=True)
            if self.ended.wait(1.0):
                return

    def _client_gone(self) -> None:
        if self.cancel_on_disconnect and self.ref:
            try:
                self.client.stop(self.ref)
            except Exception:  # the task goes on; nothing to tell anyone
                log.warning("cancel on disconnect of %s failed", self.ref, exc_info=True)
