"""The OpenAPI paths of the routes beside API v2's own table, for /openapi.json: API v2's live
routes (the pow-1 websocket and the event stream), pow-1's REST half, Procstar's /procs,
Meproc's /proc and Duxcore's /service and /docker/image. The rule tables of
khala/gateway/pow, khala/gateway/procstar and khala/gateway/duxcore are read here,
and a unit test holds every rule the app serves to a documented path."""

from __future__ import annotations

from typing import Any

from khala.gateway import duxcore
from khala.gateway import pow as pow_rest
from khala.gateway.procstar import ROUTES as PROC_ROUTES
from khala.gateway.procstar.errors import PREFIX as PROC_PREFIX

JSON_OBJECT = {"type": "object"}


def _content(kind: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {kind: {"schema": schema}}}


def _path_params(rule: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in rule.split("/") if part.startswith("<")]
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in names]


def openapi_path(rule: str) -> str:
    return rule.replace("<", "{").replace(">", "}")


def live_paths() -> dict[str, dict[str, Any]]:
    ws = {"operationId": "pow_websocket", "tags": ["live"],
          "summary": "pow-1 (Process Over Websocket): a websocket with the subprotocol pow-1; "
                     "binary frames carry the call, signals and the result, text frames "
                     "input and output (docs/streaming.md)",
          "parameters": [
              {"name": "Upgrade", "in": "header", "required": True,
               "schema": {"type": "string", "enum": ["websocket"]}},
              {"name": "Sec-WebSocket-Protocol", "in": "header", "required": True,
               "schema": {"type": "string", "enum": ["pow-1"]}},
              {"name": "cancel_on_disconnect", "in": "query", "required": False,
               "schema": {"type": "string", "enum": ["1", "true"]}}],
          "responses": {"101": {"description": "switching to the websocket"},
                        "400": _content("application/json", JSON_OBJECT,
                                        "no websocket upgrade, or no pow-1 subprotocol"),
                        "503": _content("application/json", JSON_OBJECT,
                                        "too many live streams on this worker")}}
    events = {"operationId": "task_events", "tags": ["live"],
              "summary": "The task's status changes, output chunks and final task as "
                         "Server-Sent Events; resumable with Last-Event-ID",
              "parameters": [*_path_params("<id>"),
                             {"name": "Last-Event-ID", "in": "header", "required": False,
                              "schema": {"type": "string"}}],
              "responses": {"200": _content("text/event-stream", {"type": "string"},
                                            "events: status, output, dropped, task"),
                            "400": _content("application/json", JSON_OBJECT,
                                            "a malformed Last-Event-ID"),
                            "404": _content("application/json", JSON_OBJECT, "no such task")}}
    return {"/api/v2/pow": {"get": ws}, "/api/v2/tasks/{id}/events": {"get": events}}


POW_DOCS = {
    "new": ("Create a process from a call and its params (pow-1's call message)",
            {"200": _content("application/json", {"type": "string"}, "the process id")},
            {"type": "object", "required": ["call"], "properties": {
                "call": {"type": "string", "examples": ["task"]},
                "params": {"type": "array", "items": {"type": "string"}}}}),
    "status": ("Its status (pending, fulfilled with the task, rejected with the reason) and "
               "its output so far", {"200": _content("application/json", {
                   "type": "object", "required": ["result"], "properties": {
                       "result": JSON_OBJECT, "buffer": {"type": "string"}}},
                   "status and output")}, None),
    "input": ("Send text to its stdin (interactive tasks)",
              {"200": _content("text/plain", {"type": "string"}, "input sent")},
              {"type": "string"}),
    "close_input": ("Close its stdin", {"200": _content("text/plain", {"type": "string"},
                                                        "input closed")}, None),
    "cancel": ("Cancel it", {"200": _content("text/plain", {"type": "string"},
                                             "process cancelled")}, None),
}


def pow_paths() -> dict[str, dict[str, Any]]:
    text = {"type": "string"}
    errors = {"400": _content("text/plain", text, "bad request, or the process has ended"),
              "404": _content("text/plain", text, "process not found"),
              "503": _content("text/plain", text, "not possible now: try again")}
    paths: dict[str, dict[str, Any]] = {}
    for method, rule, view in pow_rest.ROUTES:
        summary, responses, body = POW_DOCS[view]
        op: dict[str, Any] = {"operationId": f"pow_{view}", "tags": ["pow-1 REST"],
                              "summary": summary, "parameters": _path_params(rule),
                              "responses": {**errors, **responses}}
        if body is not None:
            kind = "text/plain" if body == {"type": "string"} else "application/json"
            op["requestBody"] = {"required": True, "content": {kind: {"schema": body}}}
        paths.setdefault(openapi_path(pow_rest.PREFIX + rule), {})[method.lower()] = op
    return paths


PROC_DOCS = {
    "list": "Every process's result, by id (?fds: with their outputs)",
    "create": "Create and start a process (Khala chooses the id: see Location)",
    "get": "One process's result (?fds: with its outputs)",
    "create_with_id": "Create and start a process under this id (400 when it exists)",
    "delete": "Forget a completed process (409 while it runs)",
    "fd": "One captured fd (stdout, 1; stderr, 2) as JSON, also while it runs",
    "fd_out": "The raw bytes of one captured fd (Accept-Encoding: gz, gzip, br)",
    "signal": "Send a signal to the process (409 once it completed)",
}


def procstar_paths() -> dict[str, dict[str, Any]]:
    envelope = {"type": "object", "properties": {"data": JSON_OBJECT}}
    errors = {str(s): _content("application/json", {"type": "object", "properties": {
        "errors": {"type": "array", "items": JSON_OBJECT}}}, d)
        for s, d in ((400, "bad request"), (404, "no such process"),
                     (409, "the process's state forbids it"), (503, "not possible now"))}
    paths: dict[str, dict[str, Any]] = {}
    for method, rule, view in PROC_ROUTES:
        ok = "201" if method == "POST" else "200"
        raw = view == "fd_out"
        answer = (_content("application/octet-stream", {"type": "string"}, "the bytes") if raw
                  else _content("application/json", envelope, "{data: …}"))
        op: dict[str, Any] = {"operationId": f"procstar_{view}", "tags": ["Procstar"],
                              "summary": PROC_DOCS[view], "parameters": _path_params(rule),
                              "responses": {**errors, ok: answer}}
        if method == "POST":
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "required": ["argv"], "properties": {
                    "argv": {"type": "array", "items": {"type": "string"}},
                    "env": {"type": "object", "properties": {"vars": JSON_OBJECT}}}}}}}
        paths.setdefault(openapi_path(PROC_PREFIX + rule), {})[method.lower()] = op
    return paths


def meproc_paths() -> dict[str, dict[str, Any]]:
    answer = {"200": _content("application/json", JSON_OBJECT, "{code, msg, data}"),
              "400": _content("application/json", JSON_OBJECT, "{code: 400, msg}")}
    name = [{"name": "name", "in": "query", "required": True, "schema": {"type": "string"}}]
    common = {"tags": ["Meproc"], "responses": answer}
    forget = {"name": "forget", "in": "query", "required": False,
              "schema": {"type": "string", "enum": ["1", "true"]}}
    return {"/proc": {
        "post": {**common, "operationId": "meproc_start", "summary": "Start a task",
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": JSON_OBJECT}}}},
        "put": {**common, "operationId": "meproc_restart", "summary": "Restart a task",
                "parameters": name},
        "delete": {**common, "operationId": "meproc_stop",
                   "summary": "Stop a task (it stays listed); forget=1 also forgets it",
                   "parameters": [*name, forget]},
        "get": {**common, "operationId": "meproc_show", "summary": "Tasks and processes"},
    }}


DUX_DOCS = {
    "create": ("201", "Create a service from a RawConfig ({type: raw, params}); it does not "
               "start", "application/json"),
    "get": ("200", "Docker's ContainerInspect document of the service", None),
    "delete": ("204", "Delete the service, its runs and its bind contents", None),
    "ctl": ("204", "start, stop, restart or kill the service ({op})", "application/json"),
    "stats": ("200", "Docker's stats document from the running step's cgroup counters", None),
    "env": ("204", "The service's environment from its next start ({NAME: value})",
            "application/json"),
    "bind": ("204", "The service's bind contents, a .tar (an addition; while stopped)",
             "application/x-tar"),
    "image": ("200", "Import a .tar of a root filesystem as an image: {image_id}",
              "application/x-tar"),
}


def duxcore_paths() -> dict[str, dict[str, Any]]:
    errors = {str(s): _content("application/json", {"type": "object", "properties": {
        "message": {"type": "string"}}}, d)
        for s, d in ((400, "bad request"), (401, "no core key, or an unknown one"),
                     (404, "no such service"), (409, "the service's state forbids it"),
                     (503, "not possible now"))}
    paths: dict[str, dict[str, Any]] = {}
    for method, rule, view in duxcore.ROUTES:
        ok, summary, body = DUX_DOCS[view]
        answer = (_content("application/json", JSON_OBJECT, "the document") if ok == "200"
                  else {"description": "done"})
        op: dict[str, Any] = {"operationId": f"duxcore_{view}", "tags": ["Duxcore"],
                              "summary": summary, "parameters": [
                                  *_path_params(rule),
                                  {"name": "X-Duxcore-CoreKey", "in": "header",
                                   "required": False, "schema": {"type": "string"}}],
                              "responses": {**errors, ok: answer}}
        if body is not None:
            schema = JSON_OBJECT if body == "application/json" else {"type": "string",
                                                                     "format": "binary"}
            op["requestBody"] = {"required": True, "content": {body: {"schema": schema}}}
        paths.setdefault(openapi_path(rule), {})[method.lower()] = op
    return paths


def more_paths() -> dict[str, dict[str, Any]]:
    return {**live_paths(), **pow_paths(), **procstar_paths(), **meproc_paths(),
            **duxcore_paths()}
