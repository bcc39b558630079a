"""The SQLite side of the operations store (khala/store/ops.py), on the task store's
connections."""

from __future__ import annotations

import json
from typing import Any

from khala.rules import lifecycle, webhooks
from khala.rules.states import Bound
from khala.store.ops import WEBHOOK_FIELDS, OpsStore
from khala.store.sqlite.connections import Connections
from khala.store.sqlite.translate import sql_any, sql_set, sql_where, update

OPS_SCHEMA = """
CREATE TABLE IF NOT EXISTS executor_stats (
    name TEXT PRIMARY KEY, report_time TEXT NOT NULL, stats TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (
    task_id TEXT PRIMARY KEY, url TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_at TEXT NOT NULL DEFAULT '',
    lease_until TEXT NOT NULL DEFAULT '', last_status INTEGER, last_error TEXT NOT NULL
    DEFAULT '', delivered_at TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (state, next_at);
"""


class SqliteOpsStore(OpsStore):
    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        connections.get().executescript(OPS_SCHEMA)

    def queue_length(self) -> int:
        where, params = sql_where(lifecycle.QUEUED)
        return int(self._connections.get().execute(
            f"SELECT COUNT(*) FROM tasks WHERE {where}", params).fetchone()[0])

    def put_executor_stats(self, name: str, stats: dict[str, Any], now: str) -> None:
        self._connections.get().execute(
            "INSERT INTO executor_stats (name, report_time, stats) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET report_time=excluded.report_time, "
            "stats=excluded.stats", (name, now, json.dumps(stats)))

    def executor_stats(self, since: str) -> list[dict[str, Any]]:
        rows = self._connections.get().execute(
            "SELECT name, report_time, stats FROM executor_stats WHERE report_time >= ? "
            "ORDER BY name", (since,)).fetchall()
        return [{**json.loads(r["stats"]), "name": r["name"], "report_time": r["report_time"]}
                for r in rows]

    def add_webhook(self, task_id: str, url: str) -> None:
        self._connections.get().execute(
            "INSERT OR IGNORE INTO webhooks (task_id, url, state) VALUES (?, ?, ?)",
            (task_id, url, webhooks.PENDING))

    def webhook(self, task_id: str) -> dict[str, Any] | None:
        row = self._connections.get().execute("SELECT * FROM webhooks WHERE task_id = ?",
                                              (task_id,)).fetchone()
        return None if row is None else {k: row[k] for k in WEBHOOK_FIELDS}

    def webhooks_ready(self, task_ids: list[str], now: str) -> int:
        conn = self._connections.get()
        change = webhooks.MAKE_READY.bind(now=now)
        return sum(self._update(conn, task_id, change) for task_id in task_ids)

    def pending_webhooks(self, limit: int, after: str = "") -> list[str]:
        where, params = sql_where(webhooks.PENDING_ONLY, webhooks.FIELDS)
        rows = self._connections.get().execute(
            f"SELECT task_id FROM webhooks WHERE {where} AND task_id > ? ORDER BY task_id "
            "LIMIT ?", (*params, after, limit)).fetchall()
        return [r[0] for r in rows]

    def claim_webhook(self, now: str, lease_until: str) -> dict[str, Any] | None:
        due = webhooks.claim(now, lease_until)
        where, params = sql_any(due, webhooks.FIELDS)
        sets, set_params = sql_set(due[0].sets, webhooks.FIELDS)  # the same for each way
        row = self._connections.get().execute(
            f"UPDATE webhooks SET {sets} WHERE task_id = (SELECT task_id FROM webhooks WHERE "
            f"{where} ORDER BY next_at LIMIT 1) AND ({where}) RETURNING *",
            (*set_params, *params, *params)).fetchone()
        return None if row is None else {k: row[k] for k in WEBHOOK_FIELDS}

    def webhook_attempted(self, task_id: str, change: Bound) -> bool:
        return self._update(self._connections.get(), task_id, change)

    @staticmethod
    def _update(conn: Any, task_id: str, change: Bound) -> bool:
        return update(conn, "webhooks", ("task_id", task_id), change, webhooks.FIELDS)
