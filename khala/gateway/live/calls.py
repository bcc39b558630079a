"""pow-1 calls (docs/streaming.md): what a call message `{"call": NAME, "params": [...]}` asks
for, shared by the websocket (session.py) and the REST half (khala/gateway/pow/). `task`
submits a task given as API v2 JSON, `attach` names an existing task, any other name is a
server-defined call: a task template of the gateway's `pow_calls` with its params filled in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from khala.errors import InvalidInput
from khala.gateway import auth
from khala.model import Code
from khala.rpc.client import JudicatorClient
from khala.taskjson import convert
from khala.taskjson.models import TaskIn


class Rejected(Exception):
    """The call cannot be served; the message says why, for the client."""


@dataclass
class Call:
    """What a call asks for: a task to submit (`body`), or an existing one (`ref`)."""

    body: TaskIn | None = None
    ref: str = ""


def load_calls(text: str) -> dict[str, Any]:
    """The server-defined calls: a JSON object {name: task template} or @FILE holding one."""
    if not text:
        return {}
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            text = fh.read()
    calls = json.loads(text)
    if not isinstance(calls, dict) or not all(isinstance(v, dict) for v in calls.values()):
        raise InvalidInput("pow_calls must be a JSON object of task templates")
    return calls


def fill(template: Any, params: list[str]) -> Any:
    """`template` with every `{{N}}` in its strings replaced by params[N]."""
    if isinstance(template, str):
        out = template
        for index, value in enumerate(params):
            out = out.replace("{{" + str(index) + "}}", value)
        return out
    if isinstance(template, list):
        return [fill(v, params) for v in template]
    if isinstance(template, dict):
        return {k: fill(v, params) for k, v in template.items()}
    return template


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'task'}: {e['msg']}"
                     for e in exc.errors()[:5])


def task_body(text: str) -> TaskIn:
    try:
        return TaskIn.model_validate_json(text)
    except ValidationError as exc:
        raise Rejected(f"invalid task: {_problems(exc)}") from exc


def message(data: Any) -> tuple[str, list[str]]:
    """(call, params) of a call message (JSON text or an already parsed object)."""
    try:
        parsed = json.loads(data) if isinstance(data, str | bytes) else data
    except ValueError as exc:
        raise Rejected(f"the call message is not JSON: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("call"), str):
        raise Rejected('the call message must be {"call": NAME, "params": [STRING, …]}')
    params = parsed.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise Rejected("params must be an array of strings")
    return parsed["call"], params


def resolve(calls: dict[str, Any], call: str, params: list[str]) -> Call:
    if call == "attach":
        if len(params) != 1:
            raise Rejected("attach takes one param: the task id")
        return Call(ref=params[0])
    if call == "task":
        if len(params) != 1:
            raise Rejected("task takes one param: the task as JSON (docs/api-v2.md)")
        return Call(body=task_body(params[0]))
    if call in calls:
        return Call(body=task_body(json.dumps(fill(calls[call], params))))
    names = ", ".join(["task", "attach", *sorted(calls)])
    raise Rejected(f"unknown call {call!r}; calls: {names}")


def submit(client: JudicatorClient, body: TaskIn, as_key_user: bool = False) -> str:
    """Submit the call's task; its 24-hex id. `as_key_user`: a submit key's task is its
    user's (the REST half; the websocket is for admin keys)."""
    try:
        task = convert.task_from_model(body, None)
    except InvalidInput as exc:
        raise Rejected(f"invalid task: {exc}") from exc
    if as_key_user:
        task.user = auth.claim_user(task.user, "user" in body.model_fields_set)
    submitted = client.submit([task])[0]
    if submitted.code != Code.OK:
        raise Rejected(f"task refused: {submitted.detail or f'code {submitted.code}'}")
    return submitted.id
