"""API v2 task views: validate with the models, call the judicators through the typed client,
answer `{"data": …}`. What they (or the key check, or the client) raise is answered by the
blueprint's handlers as `{"errors": […]}` (errors.py): ApiError for what API v2 itself refuses,
the judicator's refusals as they come."""

from __future__ import annotations

import signal as _signal
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, request
from pydantic import Field

from khala.config import GatewaySettings
from khala.errors import InvalidInput, KhalaError, NotFound, refusal
from khala.files.refs import CHUNK, FileRef
from khala.gateway import auth
from khala.gateway.encoding import encoded, encoded_stream
from khala.gateway.v2 import parse
from khala.gateway.v2.errors import ApiError, error_item, refusal_item
from khala.gateway.v2.sources import SourceViews, language_out
from khala.model import Code, PageQuery, Status, SubmitOutcome, Task, valid_key
from khala.rpc.client import JudicatorClient
from khala.taskjson import convert
from khala.taskjson.base import STATUS_NAMES, Strict
from khala.taskjson.models import BatchItem, BatchOutcome, ErrorItem, TaskIn

#: Seconds a client refused a wait slot is asked to wait before it asks again.
WAIT_RETRY = 1


def _refused(outcome: SubmitOutcome) -> KhalaError:
    return refusal(outcome.code, outcome.detail or "refused")


class TaskViews(SourceViews):
    def __init__(self, settings: GatewaySettings, client: JudicatorClient) -> None:
        self.settings = settings
        self.client = client
        self.wait_query = parse.wait_query(settings.max_task_wait)
        # ?wait= holds a worker thread for its time: at most max_waits at once (per worker),
        # so waiting clients never take the threads every other request needs.
        self.waits = threading.BoundedSemaphore(max(1, settings.max_waits))

    # ------------------------------------------------------------------ submission

    def _task_in(self, body: TaskIn, key: str | None, user_given: bool | None = None) -> Task:
        task = convert.task_from_model(body, key)
        given = "user" in body.model_fields_set if user_given is None else user_given
        task.user = auth.claim_user(task.user, given)  # a submit key submits as its user
        return task

    def _submitted(self, outcome: SubmitOutcome, ref: str) -> Response:
        if outcome.code != Code.OK:
            raise _refused(outcome)
        task = self.client.find(ref, lean=True)
        response = jsonify({"data": convert.task_out(task).model_dump(mode="json")})
        response.status_code = 201 if outcome.created else 200
        response.headers["Location"] = f"/api/v2/tasks/{task.key or task.id}"
        return response

    def create(self) -> Response:
        body = parse.validate(TaskIn, parse.json_body(), from_json=True)
        outcome = self.client.submit([self._task_in(body, None)])[0]
        return self._submitted(outcome, outcome.id)

    def create_with_id(self, id: str) -> Response:  # noqa: A002 - route name
        if not valid_key(id):
            raise ApiError(422, "a task id must be 1 to 64 of A-Z a-z 0-9 . _ -")
        body = parse.validate(TaskIn, parse.json_body(), from_json=True)
        outcome = self.client.submit([self._task_in(body, id)])[0]
        return self._submitted(outcome, id)

    def batch(self) -> Response:
        raw = parse.validate(_RawBatch, parse.json_body(), from_json=True)
        if len(raw.tasks) > self.settings.max_batch_size:
            raise ApiError(422, f"a batch holds at most {self.settings.max_batch_size} tasks")
        answers: list[BatchOutcome | None] = []
        tasks: list[Task] = []
        for item in raw.tasks:
            try:
                parsed = parse.validate(BatchItem, item)
                tasks.append(self._task_in(TaskIn(**parsed.model_dump(exclude={"id"})),
                                           parsed.id, "user" in parsed.model_fields_set))
                answers.append(None)
            except parse.Invalid as exc:
                answers.append(_failed(422, exc.items, item))
            except ApiError as exc:
                answers.append(_failed(exc.status, [error_item(exc.status, exc.detail)], item))
            except KhalaError as exc:
                status, error = refusal_item(exc)
                answers.append(_failed(status, [error], item))
        outcomes = iter(self.client.submit(tasks) if tasks else [])
        keys = iter(tasks)
        result = []
        for answer in answers:
            if answer is None:
                outcome, task = next(outcomes), next(keys)
                answer = self._batch_outcome(outcome, task)
            result.append(answer.model_dump(mode="json"))
        return jsonify({"data": result})

    @staticmethod
    def _batch_outcome(outcome: SubmitOutcome, task: Task) -> BatchOutcome:
        ref = task.key or outcome.id or None
        if outcome.code != Code.OK:
            status, error = refusal_item(_refused(outcome))
            return BatchOutcome(status=status, id=ref, data=None, errors=[ErrorItem(**error)])
        task.id, task.add_time, task.status = outcome.id, "", Status.PENDING
        summary = convert.summary_of(task)
        return BatchOutcome(status=201 if outcome.created else 200, id=ref, data=summary,
                            errors=None)

    # ------------------------------------------------------------------ reading

    def get(self, id: str) -> Response:  # noqa: A002
        args = parse.validate(self.wait_query, request.args.to_dict())
        task = (self._waited(id, args.wait) if args.wait > 0
                else self.client.find(id, lean=True))
        return jsonify({"data": convert.task_out(task).model_dump(mode="json")})

    def _waited(self, ref: str, wait: float) -> Task:
        """The task once done or after `wait` seconds, if a wait slot is free; else the task
        if it is done already, else 429 (the client asks again after Retry-After)."""
        if not self.waits.acquire(blocking=False):
            task = self.client.find(ref, lean=True)
            if task.done:
                return task
            raise ApiError(429, f"too many waiting requests on this gateway worker (at most "
                           f"{self.settings.max_waits}); ask again", retry_after=WAIT_RETRY)
        try:
            return self.client.find(ref, wait, lean=True)
        finally:
            self.waits.release()

    def list(self) -> Response:
        args = request.args.to_dict()
        args.pop("status", None)
        statuses = request.args.getlist("status")
        query = parse.validate(parse.ListQuery, {**args, "status": [
            s for part in statuses for s in part.split(",")]})  # an empty name is no status
        after_time, after_id = (parse.decode_cursor(query.cursor) if query.cursor
                                else (None, None))
        try:
            briefs, more = self.client.page(PageQuery(
                user=auth.list_user(query.user),
                statuses=[STATUS_NAMES.index(s) for s in query.status],
                start_time=parse.time_arg(query.since, "since"),
                end_time=parse.time_arg(query.until, "until"),
                old_to_new=query.order == "oldest",
                limit=query.limit,
                after_time=after_time,
                after_id=after_id,
            ))
        except InvalidInput as exc:  # a query the models let through: a malformed request
            raise ApiError(400, str(exc)) from exc
        next_link = None
        if more and briefs:
            params = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
            params.append(("cursor", parse.encode_cursor(briefs[-1])))
            next_link = f"/api/v2/tasks?{urlencode(params)}"
        return jsonify({"data": [convert.summary_of(b).model_dump(mode="json")
                                 for b in briefs], "links": {"next": next_link}})

    def output(self, id: str, step: str, stream: str) -> Response:  # noqa: A002
        if step not in ("compile", "execute") or stream not in ("stdout", "stderr"):
            raise ApiError(404, "outputs are compile|execute / stdout|stderr")
        task = self.client.find(id)
        if not task.done:
            raise ApiError(409, "the outputs are recorded when the task ends")
        accept = request.headers.get("Accept-Encoding", "")
        ref = convert.stored_output(task, step, stream)
        if ref is not None:  # kept whole as a stored file: sent a chunk at a time
            return encoded_stream(self._file_chunks(ref), accept)
        return encoded(convert.output_bytes(task, step, stream), accept)

    def _file_chunks(self, ref: FileRef) -> Iterator[bytes]:
        offset = 0
        while offset < ref.size:
            data = self.client.file_read(ref.sha256, offset, min(CHUNK, ref.size - offset))
            if not data:
                return
            offset += len(data)
            yield data

    def languages(self) -> Response:
        return jsonify({"data": [language_out(x) for x in self.client.languages()]})

    # ------------------------------------------------------------------ control

    def signal(self, id: str, signal: str) -> Response:  # noqa: A002
        signum = parse.signum(signal)
        self.client.signal(id, signum)
        response = jsonify({"data": {"id": id, "signal": _signal.Signals(signum).name}})
        response.status_code = 202
        return response

    def cancel(self, id: str) -> Response:  # noqa: A002
        self.client.stop(id)
        return self.get(id)

    def delete(self, id: str) -> Response:  # noqa: A002
        self.client.remove(id)
        return Response(status=204)

    # ------------------------------------------------------------------ executors

    def executors(self) -> Response:
        return jsonify({"data": [convert.executor_out(s) for s in self.client.executor_stats()]})

    def executor(self, name: str) -> Response:
        found = self.client.executor_stats(name)
        if not found:
            raise NotFound(f"no live executor {name!r}")
        return jsonify({"data": convert.executor_out(found[0])})


class _RawBatch(Strict):
    """A batch whose items are validated one by one (each gets its own outcome)."""

    tasks: list[Any] = Field(min_length=1)


def _failed(status: int, items: list[dict[str, str]], item: Any) -> BatchOutcome:
    ref = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
    return BatchOutcome(status=status, id=ref, data=None,
                        errors=[ErrorItem(**i) for i in items])
