"""The MongoDB backend's one client per store: opened from the URL, shared by the task store,
the operations store and (on FerretDB) the write locks; what the server says about itself;
and a lost connection as khala's Unavailable."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import pymongo
from pymongo.errors import ConfigurationError, ConnectionFailure
from pymongo.uri_parser import parse_uri
from pymongo.write_concern import WriteConcern

from khala.errors import ConfigError, Unavailable

DEFAULT_DATABASE = "khala"
SERVER_SELECTION_TIMEOUT_MS = 10000

MongoClient = pymongo.MongoClient[dict[str, Any]]


def connect(url: str) -> tuple[MongoClient, str]:
    """`mongodb://host[,host…]/[database][?options]` → a client (not yet connected) and the
    database name (`khala` unless the URL names one)."""
    try:
        parsed = parse_uri(url)
    except (ValueError, ConfigurationError) as exc:
        raise ConfigError(f"bad MongoDB URL {url!r}: {exc}") from exc
    options: dict[str, Any] = {"tz_aware": False}
    if "serverselectiontimeoutms" not in parsed["options"]:
        options["serverSelectionTimeoutMS"] = SERVER_SELECTION_TIMEOUT_MS
    client: MongoClient = pymongo.MongoClient(url, **options)
    return client, parsed.get("database") or DEFAULT_DATABASE


def parse_write_concern(value: str | int) -> WriteConcern:
    """`majority`, a tag set name, or a number of members."""
    text = str(value).strip()
    if not text:
        raise ConfigError("empty MongoDB write concern")
    return WriteConcern(w=int(text) if text.isdigit() else text)


def is_ferretdb(client: MongoClient) -> bool:
    """Whether the server is FerretDB (it names itself in buildInfo): there a conditional update
    is a read then a write, not one atomic step (khala/store/mongo/ferret.py)."""
    info = client.admin.command("buildInfo")
    return any(key.lower().startswith("ferretdb") for key in info)


def server_time(client: MongoClient) -> float:
    """The server's clock (`hello` localTime, naive UTC), in seconds since the epoch."""
    local: datetime.datetime = client.admin.command("hello")["localTime"]
    return local.replace(tzinfo=datetime.UTC).timestamp()


P = ParamSpec("P")
R = TypeVar("R")


def unavailable(method: Callable[P, R]) -> Callable[P, R]:
    """Connection failures become khala Unavailable (the caller may retry); others pass."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except ConnectionFailure as exc:
            raise Unavailable(f"MongoDB store unreachable: {exc}") from exc

    return wrapper
