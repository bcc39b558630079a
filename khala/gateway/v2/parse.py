"""Reading API v2 requests: JSON bodies validated with the models, the query models, cursors,
times and signal names. A malformed request raises ApiError (400, or 422 with the items)."""

from __future__ import annotations

import base64
import binascii
import re
import signal as _signal
from typing import Any, Literal

from flask import request
from pydantic import BaseModel, Field, ValidationError

from khala.gateway.v2.errors import ApiError, validation_items
from khala.model import INT_MAX, MAX_PAGE, PageQuery, canonical_time
from khala.taskjson.models import StatusName


class ListQuery(BaseModel):
    user: int | None = Field(None, ge=0, le=INT_MAX)
    status: list[StatusName] = Field(default_factory=list, description="any of these")
    since: str | None = Field(None, description="added at or after (ISO 8601)")
    until: str | None = Field(None, description="added at or before (ISO 8601)")
    order: Literal["newest", "oldest"] = "newest"
    limit: int = Field(PageQuery.limit, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(None, description="links.next of the previous page gives it")


def wait_query(max_wait: float) -> type[BaseModel]:
    class WaitQuery(BaseModel):
        wait: float = Field(0.0, ge=0, le=max_wait, allow_inf_nan=False,
                            description="hold the answer until the task is done, seconds")

    return WaitQuery


class Invalid(ApiError):
    """422 with one item per problem."""

    def __init__(self, items: list[dict[str, str]]) -> None:
        super().__init__(422, "; ".join(i["detail"] for i in items))
        self.items = items


def json_body() -> bytes:
    data = request.get_data(cache=False)
    if not data:
        raise ApiError(400, "a JSON request body is required")
    return data


def validate(model: type[BaseModel], data: Any, from_json: bool = False) -> Any:
    try:
        if from_json:
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "the request body is not valid JSON") from exc
        raise Invalid(validation_items(exc)) from exc


#: What a signal in a path may be (the route table documents it): a name or a number.
SIGNAL_PATTERN = r"^[A-Za-z0-9]{1,16}$"
SIGNAL_NUMBERS = frozenset(int(s) for s in _signal.Signals)


def signum(text: str) -> int:
    """The number of a signal given by name (TERM, SIGTERM) or number (15); 422 for anything
    else (a number no signal has, other digits than 0-9, a text too long to be one)."""
    if re.fullmatch(SIGNAL_PATTERN, text, flags=re.ASCII):
        if text.isdigit():
            if int(text) in SIGNAL_NUMBERS:
                return int(text)
        else:
            name = text.upper()
            name = name if name.startswith("SIG") else "SIG" + name
            if name in _signal.Signals.__members__:
                return int(_signal.Signals[name])
    raise ApiError(422, f"unknown signal {text[:32]!r}")


def encode_cursor(brief: Any) -> str:
    return base64.urlsafe_b64encode(f"{brief.add_time}|{brief.id}".encode()).decode()


def decode_cursor(text: str) -> tuple[str, str]:
    try:
        add_time, _, task_id = base64.urlsafe_b64decode(text.encode()).decode().partition("|")
        return canonical_time(add_time), task_id
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ApiError(400, "malformed cursor") from exc


def time_arg(text: str | None, name: str) -> str | None:
    if text is None:
        return None
    try:
        return canonical_time(text)
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, f"{name} is not a valid ISO 8601 time") from exc
