"""The seed HTTP API (seed 004): each request becomes one Judicator RPC (or a discovery lookup).

`Api` holds the surface's collaborators (settings, judicator client, discovery); the blueprint's
routes call its bound methods, so there is no module-level state. The views only do their work:
whatever they, the key check or the client raise (the judicator's refusals, Unavailable) is
answered by the blueprint's handlers in the seed's shape (errors.py).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from khala.config import GatewaySettings
from khala.discovery.base import Discovery
from khala.gateway import auth
from khala.gateway.seed import forms, render
from khala.gateway.seed.errors import register_errors
from khala.gateway.tables import table_blueprint
from khala.model import Code, Task
from khala.rpc.client import JudicatorClient

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


class Api:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient,
                 discovery: Discovery) -> None:
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
        task = forms.parse_task(request.form, files, self.settings)
        task.user = auth.claim_user(task.user, "user" in request.form)
        task_id = self.client.add(task)
        return jsonify({"result": int(Code.OK), "id": task_id or None})

    def cancel(self) -> Response:
        self.client.cancel(forms.parse_id(request.args.get("id")))
        return jsonify({"result": int(Code.OK)})

    def search(self) -> Response:
        query = forms.parse_search(request.args)
        query.user = auth.list_user(query.user)
        pages, briefs = self.client.search(query)
        tasks = [render.brief_json(b) for b in briefs]
        return jsonify({"result": int(Code.OK), "pages": pages, "tasks": tasks})

    def get(self) -> Response:
        args = request.args
        task_id = forms.parse_id(args.get("id"))
        file_name = forms.parse_file(args.get("file"))
        task = self.client.get(task_id)
        if file_name is not None:
            return self._download(task, file_name)
        limit = None if args.get("no_truncate") else self.settings.truncate
        return jsonify({"result": int(Code.OK), "task": render.task_json(task, limit)})

    @staticmethod
    def _download(task: Task, file_name: str) -> Response:
        content = render.file_content(task, file_name)
        if not content:
            return Response("not found\n", status=404, mimetype="text/plain")
        is_zip = file_name in forms.ZIP_FILES
        filename = f"{task.id}_{file_name}.{'zip' if is_zip else 'txt'}"
        return Response(
            content,
            mimetype="application/zip" if is_zip else "text/plain; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename={filename}"},
        )

    # ------------------------------------------------------------------------- cluster

    def executors(self) -> Response:
        infos = self.client.executors()
        return jsonify(
            {"result": int(Code.OK), "executors": [render.executor_json(i) for i in infos]}
        )

    def judicators(self) -> Response:
        entries = [render.judicator_json(e) for e in self.discovery.judicators()]
        return jsonify({"result": int(Code.OK), "judicators": entries})


#: (method, rule, view) of every route.
ROUTES = (
    ("GET", "/api", "index"),
    ("GET", "/api/test", "test"),
    ("POST", "/api/task", "add"),
    ("DELETE", "/api/task", "cancel"),
    ("GET", "/api/task", "get"),
    ("GET", "/api/task/list", "search"),
    ("GET", "/api/executors", "executors"),
    ("GET", "/api/judicators", "judicators"),
)


def seed_blueprint(settings: GatewaySettings, client: JudicatorClient,
                   discovery: Discovery) -> Blueprint:
    """The seed API's routes (endpoints seed.<view>) with its own error answers."""
    return table_blueprint("seed", __name__, Api(settings, client, discovery), ROUTES,
                           register_errors)
