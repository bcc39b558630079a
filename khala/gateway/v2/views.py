"""API v2 views: validate with the models, call the judicators through TaskClient, answer
`{"data": …}` or raise ApiError (answered as `{"errors": […]}`)."""

from __future__ import annotations

import base64
import binascii
import gzip
import signal as _signal
from typing import Any
from urllib.parse import urlencode

import brotli
from flask import Response, jsonify, request
from pydantic import BaseModel, Field, ValidationError

from khala.config import GatewaySettings
from khala.errors import InvalidInput
from khala.gateway import auth
from khala.gateway.v2.errors import ApiError, error_item, error_response, validation_items
from khala.gateway.v2.jobs import JobViews
from khala.gateway.v2.sources import SourceViews, language_out
from khala.gateway.v2.spec import ListQuery, wait_query
from khala.model import (
    Code,
    PageQuery,
    Status,
    SubmitOutcome,
    Task,
    canonical_time,
    valid_key,
)
from khala.rpc.tasks_client import TaskCalls
from khala.taskjson import convert
from khala.taskjson.models import (
    STATUS_NAMES,
    BatchItem,
    BatchOutcome,
    ErrorItem,
    TaskIn,
)

CODE_STATUS = {
    Code.INVALID_INPUT: 422,
    Code.TOO_LARGE: 413,
    Code.CONFLICT: 409,
    Code.NOT_EXIST: 404,
    Code.ERROR: 503,
}


def _status(code: int) -> int:
    return CODE_STATUS.get(Code(code), 500) if code in set(Code) else 500


def _json_body() -> bytes:
    data = request.get_data(cache=False)
    if not data:
        raise ApiError(400, "a JSON request body is required")
    return data


def _validate(model: type[BaseModel], data: Any, from_json: bool = False) -> Any:
    try:
        if from_json:
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "the request body is not valid JSON") from exc
        raise _Invalid(validation_items(exc)) from exc


class _Invalid(ApiError):
    def __init__(self, items: list[dict[str, str]]) -> None:
        super().__init__(422, "; ".join(i["detail"] for i in items))
        self.items = items


def _signum(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(_signal.Signals[name])
    except KeyError:
        raise ApiError(422, f"unknown signal {text!r}") from None


def _encode_cursor(brief: Any) -> str:
    return base64.urlsafe_b64encode(f"{brief.add_time}|{brief.id}".encode()).decode()


def _decode_cursor(text: str) -> tuple[str, str]:
    try:
        add_time, _, task_id = base64.urlsafe_b64decode(text.encode()).decode().partition("|")
        return canonical_time(add_time), task_id
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ApiError(400, "malformed cursor") from exc


def _time(text: str | None, name: str) -> str | None:
    if text is None:
        return None
    try:
        return canonical_time(text)
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, f"{name} is not a valid ISO 8601 time") from exc


def choose_encoding(header: str) -> str | None:
    """br or gzip when Accept-Encoding asks for it (the higher q wins; br on a tie)."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        weights[name.strip().lower()] = q
    star = weights.get("*", 0.0)
    best = max(("br", "gzip"), key=lambda n: (weights.get(n, star), n == "br"))
    return best if weights.get(best, star) > 0 else None


class V2Api(JobViews, SourceViews):
    def __init__(self, settings: GatewaySettings, tasks: TaskCalls) -> None:
        self.settings = settings
        self.tasks = tasks
        self.wait_query = wait_query(settings.max_task_wait)

    # ------------------------------------------------------------------ submission

    def _task_in(self, body: TaskIn, key: str | None, user_given: bool | None = None) -> Task:
        try:
            task = convert.task_from_model(body, key)
        except InvalidInput as exc:
            raise ApiError(422, str(exc)) from exc
        given = "user" in body.model_fields_set if user_given is None else user_given
        task.user = auth.claim_user(task.user, given)  # a submit key submits as its user
        return task

    def _submitted(self, outcome: SubmitOutcome, ref: str) -> Response:
        if outcome.code != Code.OK:
            raise ApiError(_status(outcome.code), outcome.detail or "refused")
        code, task = self.tasks.find(ref)
        if task is None:
            raise ApiError(_status(code), "the task could not be read back")
        response = jsonify({"data": convert.task_out(task).model_dump(mode="json")})
        response.status_code = 201 if outcome.created else 200
        response.headers["Location"] = f"/api/v2/tasks/{task.key or task.id}"
        return response

    def create(self) -> Response:
        body = _validate(TaskIn, _json_body(), from_json=True)
        outcome = self.tasks.submit([self._task_in(body, None)])[0]
        return self._submitted(outcome, outcome.id)

    def create_with_id(self, id: str) -> Response:  # noqa: A002 - route name
        if not valid_key(id):
            raise ApiError(422, "a task id must be 1 to 64 of A-Z a-z 0-9 . _ -")
        body = _validate(TaskIn, _json_body(), from_json=True)
        outcome = self.tasks.submit([self._task_in(body, id)])[0]
        return self._submitted(outcome, id)

    def batch(self) -> Response:
        raw = _validate(_RawBatch, _json_body(), from_json=True)
        if len(raw.tasks) > self.settings.max_batch_size:
            raise ApiError(422, f"a batch holds at most {self.settings.max_batch_size} tasks")
        answers: list[BatchOutcome | None] = []
        tasks: list[Task] = []
        for item in raw.tasks:
            try:
                parsed = _validate(BatchItem, item)
                tasks.append(self._task_in(TaskIn(**parsed.model_dump(exclude={"id"})),
                                           parsed.id, "user" in parsed.model_fields_set))
                answers.append(None)
            except _Invalid as exc:
                answers.append(_failed(422, exc.items, item))
            except ApiError as exc:
                answers.append(_failed(exc.status, [error_item(exc.status, exc.detail)], item))
        outcomes = iter(self.tasks.submit(tasks) if tasks else [])
        keys = iter(tasks)
        result = []
        for answer in answers:
            if answer is None:
                outcome, task = next(outcomes), next(keys)
                answer = self._batch_outcome(outcome, task)
            result.append(answer.model_dump(mode="json"))
        return jsonify({"data": result})

    def _batch_outcome(self, outcome: SubmitOutcome, task: Task) -> BatchOutcome:
        ref = task.key or outcome.id or None
        if outcome.code != Code.OK:
            status = _status(outcome.code)
            detail = outcome.detail or "refused"
            return BatchOutcome(status=status, id=ref, data=None,
                                errors=[ErrorItem(**error_item(status, detail))])
        task.id, task.add_time, task.status = outcome.id, "", Status.PENDING
        summary = convert.summary_of(task)
        return BatchOutcome(status=201 if outcome.created else 200, id=ref, data=summary,
                            errors=None)

    # ------------------------------------------------------------------ reading

    def get(self, id: str) -> Response:  # noqa: A002
        args = _validate(self.wait_query, request.args.to_dict())
        code, task = self.tasks.find(id, args.wait)
        if task is None:
            raise ApiError(_status(code), f"no task {id!r}" if code == Code.NOT_EXIST
                           else "the task could not be read")
        return jsonify({"data": convert.task_out(task).model_dump(mode="json")})

    def list(self) -> Response:
        args = request.args.to_dict()
        args.pop("status", None)
        statuses = request.args.getlist("status")
        query = _validate(ListQuery, {**args, "status": [
            s for part in statuses for s in part.split(",") if s]})
        after_time, after_id = (_decode_cursor(query.cursor) if query.cursor else (None, None))
        code, briefs, more = self.tasks.page(PageQuery(
            user=auth.list_user(query.user),
            statuses=[STATUS_NAMES.index(s) for s in query.status],
            start_time=_time(query.since, "since"),
            end_time=_time(query.until, "until"),
            old_to_new=query.order == "oldest",
            limit=query.limit,
            after_time=after_time,
            after_id=after_id,
        ))
        if code != Code.OK:
            raise ApiError(400 if code == Code.INVALID_INPUT else _status(code),
                           "the list query was refused")
        next_link = None
        if more and briefs:
            params = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
            params.append(("cursor", _encode_cursor(briefs[-1])))
            next_link = f"/api/v2/tasks?{urlencode(params)}"
        return jsonify({"data": [convert.summary_of(b).model_dump(mode="json")
                                 for b in briefs], "links": {"next": next_link}})

    def output(self, id: str, step: str, stream: str) -> Response:  # noqa: A002
        if step not in ("compile", "execute") or stream not in ("stdout", "stderr"):
            raise ApiError(404, "outputs are compile|execute / stdout|stderr")
        code, task = self.tasks.find(id)
        if task is None:
            raise ApiError(_status(code), f"no task {id!r}")
        if not task.done:
            raise ApiError(409, "the outputs are recorded when the task ends")
        data = convert.output_bytes(task, step, stream)
        encoding = choose_encoding(request.headers.get("Accept-Encoding", ""))
        if encoding == "br":
            data = brotli.compress(data)
        elif encoding == "gzip":
            data = gzip.compress(data, mtime=0)
        response = Response(data, mimetype="application/octet-stream")
        if encoding:
            response.headers["Content-Encoding"] = encoding
        response.headers["Vary"] = "Accept-Encoding"
        return response

    def languages(self) -> Response:
        code, found = self.tasks.language_list()
        if code != Code.OK:
            raise ApiError(_status(code), "the languages could not be read")
        return jsonify({"data": [language_out(x) for x in found]})

    # ------------------------------------------------------------------ control

    def signal(self, id: str, signal: str) -> Response:  # noqa: A002
        signum = _signum(signal)
        code = self.tasks.signal(id, signum)
        if code == Code.INVALID_INPUT:
            raise ApiError(422, f"unknown signal {signal!r}")
        if code != Code.OK:
            raise ApiError(_status(code), {404: f"no task {id!r}", 409: "the task is done"}.get(
                _status(code), "refused"))
        response = jsonify({"data": {"id": id, "signal": _signal.Signals(signum).name}})
        response.status_code = 202
        return response

    def cancel(self, id: str) -> Response:  # noqa: A002
        code = self.tasks.stop(id)
        if code != Code.OK:
            raise ApiError(_status(code), {404: f"no task {id!r}", 409: "the task is done"}.get(
                _status(code), "refused"))
        return self.get(id)

    def delete(self, id: str) -> Response:  # noqa: A002
        code = self.tasks.remove(id)
        if code != Code.OK:
            raise ApiError(_status(code), {404: f"no task {id!r}",
                                           409: "the task is not done"}.get(
                _status(code), "refused"))
        return Response(status=204)


    # ------------------------------------------------------------------ executors

    def executors(self) -> Response:
        code, found = self.tasks.executor_stats("")  # type: ignore[attr-defined]
        if code != Code.OK:
            raise ApiError(_status(code), "the executors could not be read")
        return jsonify({"data": [convert.executor_out(s) for s in found]})

    def executor(self, name: str) -> Response:
        code, found = self.tasks.executor_stats(name)  # type: ignore[attr-defined]
        if code == Code.NOT_EXIST or (code == Code.OK and not found):
            raise ApiError(404, f"no live executor {name!r}")
        if code != Code.OK:
            raise ApiError(_status(code), "the executor could not be read")
        return jsonify({"data": convert.executor_out(found[0])})


class _RawBatch(BaseModel):
    tasks: list[Any] = Field(min_length=1)


def _failed(status: int, items: list[dict[str, str]], item: Any) -> BatchOutcome:
    ref = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
    return BatchOutcome(status=status, id=ref, data=None,
                        errors=[ErrorItem(**i) for i in items])


__all__ = ["V2Api", "choose_encoding", "error_response"]
