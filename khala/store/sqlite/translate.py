"""State-machine conditions and changes → SQL: the one translator of the SQLite backend, for the
task life cycle (khala/rules/lifecycle.py) and webhook deliveries (khala/rules/webhooks.py).
Pure: builds statements, runs none but `update`'s one."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from khala.rules import lifecycle
from khala.rules.states import AtMost, Bound, Cond, Eq, NotNone, OneOf, check_fields
from khala.store.codec import pack_outputs, result_to_json

# A task's language and its checker's and interactor's languages, read from the stored spec
# (NEEDS_FROM_SPEC below).
TASK_LANGUAGES = (
    "COALESCE(json_extract(spec, '$.compile.language'), '')",
    "COALESCE(json_extract(spec, '$.execute.compare.checker.language'), '')",
    "COALESCE(json_extract(spec, '$.execute.interactor.language'), '')",
    # a stored problem's jury programs (Execute.problem, recorded by the judicator)
    "COALESCE(json_extract(spec, '$.execute.problem.checker'), '')",
    "COALESCE(json_extract(spec, '$.execute.problem.interactor'), '')",
)


def sql_value(name: str, value: Any) -> Any:
    """A field's value as its column holds it (a result is two columns: sql_set)."""
    if isinstance(value, bool | IntEnum):
        return int(value)
    return value


def sql_where(where: Mapping[str, Cond],
              fields: frozenset[str] = lifecycle.FIELDS) -> tuple[str, list[Any]]:
    """Bound conditions (on `fields`: the task life cycle's unless named) → an SQL condition
    and its parameters."""
    check_fields(where, fields, "state")
    clauses: list[str] = []
    params: list[Any] = []
    for name, cond in where.items():
        if isinstance(cond, Eq) and cond.value is None:
            clauses.append(f"{name} IS NULL")
        elif isinstance(cond, Eq):
            clauses.append(f"{name} = ?")
            params.append(sql_value(name, cond.value))
        elif isinstance(cond, OneOf):
            clauses.append(f"{name} IN ({', '.join('?' * len(cond.values))})")
            params.extend(sorted(sql_value(name, v) for v in cond.values))
        elif isinstance(cond, NotNone):
            clauses.append(f"{name} IS NOT NULL")
        else:
            clauses.append(f"{name} {'<=' if isinstance(cond, AtMost) else '<'} ?")
            params.append(sql_value(name, cond.value))
    return " AND ".join(clauses), params


def sql_any(alternatives: tuple[Bound, ...], fields: frozenset[str]) -> tuple[str, list[Any]]:
    """Records meeting any of the alternatives' conditions → one SQL condition."""
    parts = [sql_where(b.where, fields) for b in alternatives]
    return " OR ".join(f"({clause})" for clause, _ in parts), [p for _, ps in parts for p in ps]


def sql_set(sets: Mapping[str, Any],
            fields: frozenset[str] = lifecycle.FIELDS) -> tuple[str, list[Any]]:
    """Bound changes → an SQL SET list and its parameters. A task's result is two columns:
    `result` (JSON) and `outputs` (its step streams, khala/store/sqlite/bodies.py)."""
    check_fields(sets, fields, "state")
    columns: list[str] = []
    params: list[Any] = []
    for name, value in sets.items():
        if name == "result":
            columns += ["result = ?", "outputs = ?"]
            params += [result_to_json(value, apart=True), pack_outputs(value)]
        else:
            columns.append(f"{name} = ?")
            params.append(sql_value(name, value))
    return ", ".join(columns), params


#: What an assignment matches against an executor's offer, kept in two small columns of the
#: task's row (filled at add: khala/store/codec.py's `task_needs`), which fair dispatch's
#: indexes also hold: `needs`, the languages the task's steps and jury programs run with (a
#: JSON array), and `imaged`, 1 when a step names an image. Read from the spec instead, each
#: candidate of each dispatch query meant reading and parsing the whole stored task, its case
#: texts included. For rows stored before the columns (and a rejudge's new spec), the same
#: from the stored spec:
NEEDS_FROM_SPEC = ("(SELECT json_group_array(value) FROM (SELECT DISTINCT value FROM json_each("
                   f"json_array({', '.join(TASK_LANGUAGES)})) WHERE value != '' ORDER BY value))")
IMAGED_FROM_SPEC = ("(json_extract(spec, '$.compile.image') IS NOT NULL"
                    " OR json_extract(spec, '$.execute.image') IS NOT NULL)")


def language_where(languages: frozenset[str] | None) -> tuple[str, list[Any]]:
    """The extra condition of an assignment to an executor offering `languages` (None: none):
    every language the task needs (its own, its checker's and its interactor's) among them."""
    if languages is None:
        return "", []
    names = ["", *sorted(languages)]
    marks = ", ".join("?" * len(names))
    return (f" AND NOT EXISTS (SELECT 1 FROM json_each(needs) WHERE value NOT IN ({marks}))",
            names)


def assign_where(languages: frozenset[str] | None, images: bool) -> tuple[str, list[Any]]:
    """The extra condition of an assignment: `language_where`, and without `images` (an
    executor that cannot run steps in images) no task that names one."""
    where, params = language_where(languages)
    if not images:
        where += " AND imaged = 0"
    return where, params


def update(conn: sqlite3.Connection, table: str, key: tuple[str, str], change: Bound,
           fields: frozenset[str] = lifecycle.FIELDS) -> bool:
    """One conditional update of the row whose column key[0] is key[1]; True if it applied."""
    where, where_params = sql_where(change.where, fields)
    sets, set_params = sql_set(change.sets, fields)
    cur = conn.execute(f"UPDATE {table} SET {sets} WHERE {key[0]} = ? AND {where}",
                       (*set_params, key[1], *where_params))
    return cur.rowcount == 1
