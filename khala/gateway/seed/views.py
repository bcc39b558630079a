"""The HTTP API views: each request becomes one Judicator RPC (or a discovery lookup).

`Api` holds the app's collaborators (settings, judicator client, discovery); Flask routes call
its bound methods, so there is no module-level state. The client speaks domain types and raises
the judicator's refusals (khala/rpc/client.py); each view turns them into its result code, and
Unavailable (no judicator, or its ERROR) reaches the app's handler, which answers result 1.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from flask import Response, jsonify, request

from khala.config import GatewaySettings
from khala.discovery.base import Discovery
from khala.errors import InvalidInput, NotFound, RemoteError, TooLarge
from khala.gateway import auth
from khala.gateway.seed import forms, render
from khala.model import Code, ExecutorInfo, SearchQuery, Task, TaskBrief

log = logging.getLogger(__name__)

TEST_TEXT = "Khala gateway server is working."
INDEX_TEXT = """Khala gateway. HTTP API (see docs/http-api.md):
  GET    /api/test
  POST   /api/task
  DELETE /api/task?id=ID
  GET    /api/task?id=ID[&file=NAME][&no_truncate=1]
  GET    /api/task/list[?id=&user=&start_time=&end_time=&old_to_new=&limit=&page=]
  GET    /api/executors
  GET    /api/judicators
"""

# The answer of each JSON endpoint when it cannot do its work: the seed's shape, keys null/empty.
EMPTY_ANSWERS: dict[str, dict[str, Any]] = {
    "add": {"id": None},
    "cancel": {},
    "search": {"pages": 0, "tasks": []},
    "get": {"task": None},
    "executors": {"executors": []},
    "judicators": {"judicators": []},
}


class Judicator(Protocol):
    """What the views need of the judicator client (khala.rpc.client.JudicatorClient)."""

    def add(self, task: Task) -> str: ...

    def cancel(self, id: str) -> None: ...  # noqa: A002

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]: ...

    def get(self, id: str) -> Task: ...  # noqa: A002

    def executors(self) -> list[ExecutorInfo]: ...


def answer(endpoint: str | None, code: int, error: str = "") -> Response:
    """The JSON answer of `endpoint` with result `code` and its other keys null/empty; a
    refusal adds `error`, the reason naming the field (the seed's keys stay as they are)."""
    body = {"result": int(code), **EMPTY_ANSWERS.get(endpoint or "", {})}
    if error:
        body["error"] = error
    return jsonify(body)


class Api:
    def __init__(self, settings: GatewaySettings, client: Judicator, discovery: Discovery) -> None:
        self.settings = settings
        self.client = client
        self.discovery = discovery

    # ------------------------------------------------------------------------- plain text

    def index(self) -> Response:
        return Response(INDEX_TEXT, mimetype="text/plain")

    def test(self) -> Response:
        return Response(TEST_TEXT, mimetype="text/plain")

    # ------------------------------------------------------------------------- tasks

    def add(self) -> Response:
        files = {
            name: request.files[name].read() for name in forms.ZIP_FILES if name in request.files
        }
        s = self.settings
        try:
            task = forms.parse_task(request.form, files, s)
            task.user = auth.claim_user(task.user, "user" in request.form)
        except TooLarge as exc:
            return answer("add", Code.TOO_LARGE, str(exc))
        except InvalidInput as exc:
            log.debug("rejected task: %s", exc)
            return answer("add", Code.INVALID_INPUT, str(exc))
        try:
            task_id = self.client.add(task)
        except (InvalidInput, NotFound, TooLarge) as exc:
            return answer("add", exc.code, str(exc))
        return jsonify({"result": int(Code.OK), "id": task_id or None})

    def cancel(self) -> Response:
        try:
            task_id = forms.parse_id(request.args.get("id"))
        except InvalidInput as exc:
            return answer("cancel", Code.INVALID_INPUT, str(exc))
        try:
            self.client.cancel(task_id)
        except (InvalidInput, NotFound) as exc:
            return answer("cancel", exc.code)
        return jsonify({"result": int(Code.OK)})

    def search(self) -> Response:
        try:
            q = forms.parse_search(request.args)
            q.user = auth.list_user(q.user)
        except InvalidInput as exc:
            return answer("search", Code.INVALID_INPUT, str(exc))
        try:
            pages, briefs = self.client.search(q)
        except (InvalidInput, NotFound) as exc:
            return answer("search", exc.code)
        tasks = [render.brief_json(b) for b in briefs]
        return jsonify({"result": int(Code.OK), "pages": pages, "tasks": tasks})

    def _fetch(self, task_id: str) -> tuple[int, Task | None]:
        """(OK, the task), or (the refusal's code, None); a judicator's ERROR gives (ERROR,
        None); Unavailable without an answer propagates."""
        try:
            return Code.OK, self.client.get(task_id)
        except (InvalidInput, NotFound) as exc:
            return exc.code, None
        except RemoteError:
            return Code.ERROR, None

    def get(self) -> Response:
        args = request.args
        try:
            task_id = forms.parse_id(args.get("id"))
            file_name = forms.parse_file(args.get("file"))
        except InvalidInput as exc:
            if args.get("file"):
                return Response("not found\n", status=404, mimetype="text/plain")
            return answer("get", Code.INVALID_INPUT, str(exc))
        if file_name is not None:
            return self._download(task_id, file_name)
        code, task = self._fetch(task_id)
        if task is None:
            return answer("get", code)
        limit = None if args.get("no_truncate") else self.settings.truncate
        return jsonify({"result": int(Code.OK), "task": render.task_json(task, limit)})

    def _download(self, task_id: str, file_name: str) -> Response:
        code, task = self._fetch(task_id)
        if task is None:
            status = 404 if code in (Code.NOT_EXIST, Code.INVALID_INPUT) else 503
            return Response(
                "not found\n" if status == 404 else "unavailable\n",
                status=status,
                mimetype="text/plain",
            )
        content = render.file_content(task, file_name)
        if not content:
            return Response("not found\n", status=404, mimetype="text/plain")
        is_zip = file_name in forms.ZIP_FILES
        filename = f"{task_id}_{file_name}.{'zip' if is_zip else 'txt'}"
        return Response(
            content,
            mimetype="application/zip" if is_zip else "text/plain; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename={filename}"},
        )

    # ------------------------------------------------------------------------- cluster

    def executors(self) -> Response:
        try:
            infos = self.client.executors()
        except (InvalidInput, NotFound) as exc:
            return answer("executors", exc.code)
        return jsonify(
            {"result": int(Code.OK), "executors": [render.executor_json(i) for i in infos]}
        )

    def judicators(self) -> Response:
        entries = [render.judicator_json(e) for e in self.discovery.judicators()]
        return jsonify({"result": int(Code.OK), "judicators": entries})
