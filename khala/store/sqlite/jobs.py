"""The SQLite side of jobs: the jobs table and the candidate gathering of fair dispatch.
Mixed into SqliteStore (which provides `_conn`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from khala.rules import lifecycle
from khala.rules.dispatch import HEAD_SCAN, MAX_LEVELS, MAX_USERS, Candidate, fair_order, head_users
from khala.store.base import StoredJob
from khala.store.sqlite.translate import sql_where


def fair_candidates(conn: sqlite3.Connection, count: int,
                    extra: tuple[str, list[Any]] = ("", [])) -> list[Candidate]:
    """Queued tasks in khala.rules.dispatch.fair_order, gathered with index lookups only: one seek
    per priority level (tasks_fair); the level's users from one bounded read of the queue in
    time order (tasks_head, khala.rules.dispatch.head_users), or when that read is dominated by a
    few users a skip scan (one seek per user, tasks_fair); each chosen user's oldest `count`
    tasks (tasks_fair); the held tasks for the counts (tasks_queue). Flat in the queue's length
    and, in the common case, in the number of users waiting.
    `extra` (" AND …", its parameters) narrows the queued tasks (judging: languages)."""
    queued, params = sql_where(lifecycle.QUEUED)
    queued, params = queued + extra[0], [*params, *extra[1]]
    active_sql, active_params = sql_where(lifecycle.ACTIVE)
    active = {
        int(r[0]): int(r[1])
        for r in conn.execute(
            f"SELECT user, COUNT(*) FROM tasks WHERE {active_sql} GROUP BY user", active_params
        )
    }
    found: list[Candidate] = []
    level: int | None = None
    for _ in range(MAX_LEVELS):
        below = "" if level is None else " AND priority < ?"
        row = conn.execute(
            f"SELECT priority FROM tasks WHERE {queued}{below} ORDER BY priority DESC LIMIT 1",
            (*params, *([] if level is None else [level])),
        ).fetchone()
        if row is None:
            break
        level = int(row[0])
        for user in _level_users(conn, queued, params, level, count - len(found), active):
            rows = conn.execute(
                f"SELECT id, user, priority, add_time FROM tasks INDEXED BY tasks_fair"
                f" WHERE {queued}"
                " AND priority = ? AND user = ? ORDER BY add_time, id LIMIT ?",
                (*params, level, user, count),
            ).fetchall()
            found.extend(Candidate(r[0], int(r[1]), int(r[2]), r[3]) for r in rows)
        if len(found) >= count:
            break
    return fair_order(found, active) if found else []


def _level_users(conn: sqlite3.Connection, queued: str, params: list[Any], level: int,
                 want: int, active: dict[int, int]) -> list[int]:
    """The users whose tasks can take the first `want` places at `level` (head_users), else
    (the read queue head belongs to a few users) every user queued there, up to MAX_USERS."""
    limit = HEAD_SCAN * want + len(active)
    rows = conn.execute(
        f"SELECT user FROM tasks INDEXED BY tasks_head WHERE {queued} AND priority = ?"
        " ORDER BY add_time, id LIMIT ?",
        (*params, level, limit),
    ).fetchall()
    users = head_users((int(r[0]) for r in rows), active, want, complete=len(rows) < limit)
    return list(_users(conn, queued, params, level)) if users is None else users


def _users(conn: sqlite3.Connection, queued: str, params: list[Any], level: int) -> Iterator[int]:
    """The users with queued tasks at `level`: a skip scan, one index seek per user."""
    user = -1
    for _ in range(MAX_USERS):
        row = conn.execute(
            f"SELECT user FROM tasks INDEXED BY tasks_fair WHERE {queued} AND priority = ?"
            " AND user > ?"
            " ORDER BY user LIMIT 1",
            (*params, level, user),
        ).fetchone()
        if row is None:
            return
        user = int(row[0])
        yield user


class SqliteJobs:
    def _conn(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SqliteStore's

    def create_job(self, name: str, spec: dict[str, Any], state: dict[str, Any]) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (name, spec, state, version) VALUES (?, ?, ?, 0)"
                " ON CONFLICT (name) DO NOTHING",
                (name, json.dumps(spec), json.dumps(state)),
            )
        return cur.rowcount == 1

    def job(self, name: str) -> StoredJob | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE name = ?", (name,)).fetchone()
        return None if row is None else _job(row)

    def jobs(self) -> list[StoredJob]:
        with self._conn() as conn:
            rows = conn.execute("SELECT * FROM jobs ORDER BY name").fetchall()
        return [_job(r) for r in rows]

    def save_job(self, name: str, version: int, state: dict[str, Any],
                 spec: dict[str, Any] | None = None) -> bool:
        with self._conn() as conn:
            if spec is None:
                cur = conn.execute(
                    "UPDATE jobs SET state = ?, version = version + 1"
                    " WHERE name = ? AND version = ?", (json.dumps(state), name, version))
            else:
                cur = conn.execute(
                    "UPDATE jobs SET state = ?, spec = ?, version = version + 1"
                    " WHERE name = ? AND version = ?",
                    (json.dumps(state), json.dumps(spec), name, version))
        return cur.rowcount == 1

    def delete_job(self, name: str, version: int) -> bool:
        with self._conn() as conn:
            cur = conn.execute("DELETE FROM jobs WHERE name = ? AND version = ?", (name, version))
        return cur.rowcount == 1


def _job(row: sqlite3.Row) -> StoredJob:
    return StoredJob(row["name"], json.loads(row["spec"]), json.loads(row["state"]),
                     int(row["version"]))
