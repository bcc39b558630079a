"""Procstar's process API (seed 000) at /procs, a thin adapter over Khala's tasks: a process is
the execute step of a task keyed `procs.<id>` (spec.py), its result Procstar's (render.py),
answers `{"data": …}` and errors `{"errors": [{status, detail}]}` (errors.py). docs/procstar.md
says what maps and what differs. One blueprint ("procstar"), behind API keys like API v2."""

from __future__ import annotations

from flask import Blueprint

from khala.config import GatewaySettings
from khala.gateway.procstar.errors import PREFIX, register_errors
from khala.gateway.procstar.views import ProcViews
from khala.gateway.tables import table_blueprint
from khala.rpc.client import JudicatorClient
from khala.streams.registry import EndpointLookup

#: (method, rule, view) of every route.
ROUTES = (
    ("GET", "", "list"),
    ("POST", "", "create"),
    ("GET", "/<id>", "get"),
    ("POST", "/<id>", "create_with_id"),
    ("DELETE", "/<id>", "delete"),
    ("GET", "/<id>/fds/<fd>", "fd"),
    ("GET", "/<id>/fds/<fd>/out", "fd_out"),
    ("PUT", "/<id>/signals/<signal>", "signal"),
)


def procstar_blueprint(settings: GatewaySettings, client: JudicatorClient,
                       lookup: EndpointLookup) -> Blueprint:
    """The Procstar routes (endpoints procstar.<view>)."""
    return table_blueprint("procstar", __name__, ProcViews(settings, client, lookup), ROUTES,
                           register_errors, PREFIX)
