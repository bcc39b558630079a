"""Blueprints made from a table of routes: rows of (method, rule, view), each view a method of
one views object, the blueprint's errors answered in its own API's shape."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint

Route = tuple[str, str, str]  # (HTTP method, URL rule, view: a method name of the views object)


def table_blueprint(name: str, import_name: str, views: Any, routes: Iterable[Route],
                    register_errors: Callable[[Blueprint], None], prefix: str = "") -> Blueprint:
    """A blueprint `name` (endpoints `name.<view>`) serving `routes` under `prefix`."""
    blueprint = Blueprint(name, import_name)
    for method, rule, view in routes:
        blueprint.add_url_rule(prefix + rule, view, getattr(views, view), methods=[method])
    register_errors(blueprint)
    return blueprint
