"""Label values from what clients send, each mapped onto a fixed set: a metric's series are
bounded by the code, never by its callers (an invented HTTP method or Thrift method name, an
odd status, a path that matches no route all land in one `other`/`unmatched` series). Pure."""

from __future__ import annotations

from collections.abc import Collection
from http import HTTPStatus

OTHER = "other"
UNMATCHED = "unmatched"

#: The HTTP methods that get a series of their own; any other method counts as `other`.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The statuses that get a series of their own (the registered ones); any other is `other`.
HTTP_STATUSES = frozenset(str(int(s)) for s in HTTPStatus)


def http_method(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER


def http_status(code: int) -> str:
    text = str(code)
    return text if text in HTTP_STATUSES else OTHER


def http_route(rule: str | None, routes: Collection[str]) -> str:
    """The route template a request matched (None: none), if it is one of the app's own."""
    if rule is None:
        return UNMATCHED
    return rule if rule in routes else OTHER


def rpc_method(name: str, methods: Collection[str]) -> str:
    """A Thrift method name, if it is one of the service's (the IDL's) methods."""
    return name if name in methods else OTHER
