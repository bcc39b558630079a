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
from khala.store.codec import result_to_json

# A task's language and its checker's and interactor's languages, read from the stored spec.
TASK_LANGUAGES = (
    "COALESCE(json_extract(spec, '$.compile.language'), '')",
    "COALESCE(json_extract(spec, '$.execute.compare.checker.language'), '')",
    "COALESCE(json_extract(spec, '$.execute.interactor.language'), '')",
    # a stored problem's jury programs (Execute.problem, recorded by the judicator)
    "COALESCE(json_extract(spec, '$.execute.problem.checker'), '')",
    "COALESCE(json_extract(spec, '$.execute.problem.interactor'), '')",
)


def sql_value(name: str, value: Any) -> Any:
    """A field's value as its column holds it."""
    if name == "result":
        return result_to_json(value)
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
    """Bound changes → an SQL SET list and its parameters."""
    check_fields(sets, fields, "state")
    return ", ".join(f"{name} = ?" for name in sets), [sql_value(n, v) for n, v in sets.items()]


def language_where(languages: frozenset[str] | None) -> tuple[str, list[Any]]:
    """The extra condition of an assignment to an executor offering `languages` (None: none):
    the task's language and its checker's and interactor's are unset or among them."""
    if languages is None:
        return "", []
    names = ["", *sorted(languages)]
    marks = ", ".join("?" * len(names))
    return ("".join(f" AND {expr} IN ({marks})" for expr in TASK_LANGUAGES),
            names * len(TASK_LANGUAGES))


# A task's images, read from the stored spec: NULL when its step runs on the executor's root.
TASK_IMAGES = ("json_extract(spec, '$.compile.image')", "json_extract(spec, '$.execute.image')")


def assign_where(languages: frozenset[str] | None, images: bool) -> tuple[str, list[Any]]:
    """The extra condition of an assignment: `language_where`, and without `images` (an
    executor that cannot run steps in images) no task that names one."""
    where, params = language_where(languages)
    if not images:
        where += "".join(f" AND {expr} IS NULL" for expr in TASK_IMAGES)
    return where, params


def update(conn: sqlite3.Connection, table: str, key: tuple[str, str], change: Bound,
           fields: frozenset[str] = lifecycle.FIELDS) -> bool:
    """One conditional update of the row whose column key[0] is key[1]; True if it applied."""
    where, where_params = sql_where(change.where, fields)
    sets, set_params = sql_set(change.sets, fields)
    cur = conn.execute(f"UPDATE {table} SET {sets} WHERE {key[0]} = ? AND {where}",
                       (*set_params, key[1], *where_params))
    return cur.rowcount == 1
