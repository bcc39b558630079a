"""The operations side of the store: executor statistics, webhook deliveries and the queue
length, kept beside the tasks (same SQLite file or MongoDB database, own tables/collections) so
that every judicator sees what any of them recorded.

Webhook states: `pending` (the task is not done yet) → `ready` (done; due at `next_at`) →
`sending` (claimed by one judicator until `lease_until`; an expired lease is due again) →
`delivered` or, after the last try, `failed`. A claim is one conditional update, so two
judicators never send the same attempt.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from typing import Any

from khala.rules import lifecycle

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
WEBHOOK_FIELDS = ("task_id", "url", "state", "attempts", "next_at", "lease_until",
                  "last_status", "last_error", "delivered_at")


class OpsStore(ABC):
    @abstractmethod
    def queue_length(self) -> int:
        """Tasks waiting for an executor (Pending + Retrying)."""

    @abstractmethod
    def put_executor_stats(self, name: str, stats: dict[str, Any], now: str) -> None:
        """Keep the latest statistics an executor reported."""

    @abstractmethod
    def executor_stats(self, since: str) -> list[dict[str, Any]]:
        """The latest statistics of executors that reported at or after `since`, by name;
        each with `name` and `report_time`."""

    @abstractmethod
    def add_webhook(self, task_id: str, url: str) -> None:
        """Record a webhook of a new task (state pending)."""

    @abstractmethod
    def webhook(self, task_id: str) -> dict[str, Any] | None:
        """The delivery record of a task's webhook."""

    @abstractmethod
    def webhooks_ready(self, task_ids: list[str], now: str) -> int:
        """These tasks are done: their pending webhooks are due now. Returns how many were
        pending."""

    @abstractmethod
    def pending_webhooks(self, limit: int, after: str = "") -> list[str]:
        """Up to `limit` task ids of webhooks still pending, in id order, after `after` (a
        sweep checks whether their task is done, page by page)."""

    @abstractmethod
    def claim_webhook(self, now: str, lease_until: str) -> dict[str, Any] | None:
        """Atomically take one due webhook (ready and next_at <= now, or sending with an
        expired lease) → sending until `lease_until`; None when nothing is due."""

    @abstractmethod
    def webhook_attempted(self, task_id: str, changes: dict[str, Any]) -> None:
        """Record the outcome of an attempt (state, attempts, next_at, last_status, …)."""

    @abstractmethod
    def close(self) -> None: ...


class SqliteOpsStore(OpsStore):
    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().executescript(OPS_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def queue_length(self) -> int:
        from khala.store.sqlite import sql_where

        where, params = sql_where(lifecycle.QUEUED)
        return int(self._conn().execute(f"SELECT COUNT(*) FROM tasks WHERE {where}",
                                        params).fetchone()[0])

    def put_executor_stats(self, name: str, stats: dict[str, Any], now: str) -> None:
        self._conn().execute(
            "INSERT INTO executor_stats (name, report_time, stats) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET report_time=excluded.report_time, "
            "stats=excluded.stats", (name, now, json.dumps(stats)))

    def executor_stats(self, since: str) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT name, report_time, stats FROM executor_stats WHERE report_time >= ? "
            "ORDER BY name", (since,)).fetchall()
        return [{**json.loads(r["stats"]), "name": r["name"], "report_time": r["report_time"]}
                for r in rows]

    def add_webhook(self, task_id: str, url: str) -> None:
        self._conn().execute("INSERT OR IGNORE INTO webhooks (task_id, url, state) "
                             "VALUES (?, ?, 'pending')", (task_id, url))

    def webhook(self, task_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM webhooks WHERE task_id = ?",
                                   (task_id,)).fetchone()
        return None if row is None else {k: row[k] for k in WEBHOOK_FIELDS}

    def webhooks_ready(self, task_ids: list[str], now: str) -> int:
        conn = self._conn()
        readied = 0
        for task_id in task_ids:
            readied += conn.execute("UPDATE webhooks SET state='ready', next_at=? WHERE "
                                    "task_id=? AND state='pending'", (now, task_id)).rowcount
        return readied

    def pending_webhooks(self, limit: int, after: str = "") -> list[str]:
        rows = self._conn().execute("SELECT task_id FROM webhooks WHERE state='pending' AND "
                                    "task_id > ? ORDER BY task_id LIMIT ?",
                                    (after, limit)).fetchall()
        return [r[0] for r in rows]

    def claim_webhook(self, now: str, lease_until: str) -> dict[str, Any] | None:
        row = self._conn().execute(
            "UPDATE webhooks SET state='sending', lease_until=? WHERE task_id = (SELECT "
            "task_id FROM webhooks WHERE (state='ready' AND next_at <= ?) OR (state="
            "'sending' AND lease_until < ?) ORDER BY next_at LIMIT 1) AND ((state='ready' "
            "AND next_at <= ?) OR (state='sending' AND lease_until < ?)) RETURNING *",
            (lease_until, now, now, now, now)).fetchone()
        return None if row is None else {k: row[k] for k in WEBHOOK_FIELDS}

    def webhook_attempted(self, task_id: str, changes: dict[str, Any]) -> None:
        names = [k for k in changes if k in WEBHOOK_FIELDS and k != "task_id"]
        sets = ", ".join(f"{k}=?" for k in names)
        self._conn().execute(f"UPDATE webhooks SET {sets} WHERE task_id=?",
                             [changes[k] for k in names] + [task_id])

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()


class MongoOpsStore(OpsStore):
    def __init__(self, url: str) -> None:
        import pymongo
        from pymongo.uri_parser import parse_uri

        from khala.store.mongodb import DEFAULT_DATABASE, mongo_filter

        self._filter = mongo_filter
        self._client: Any = pymongo.MongoClient(url, tz_aware=False,
                                                serverSelectionTimeoutMS=5000)
        db = self._client.get_database(parse_uri(url).get("database") or DEFAULT_DATABASE)
        self._tasks, self._stats, self._hooks = db["tasks"], db["executor_stats"], db["webhooks"]
        self._hooks.create_index([("state", 1), ("next_at", 1)], name="due")

    def queue_length(self) -> int:
        return int(self._tasks.count_documents(self._filter(lifecycle.QUEUED)))

    def put_executor_stats(self, name: str, stats: dict[str, Any], now: str) -> None:
        self._stats.replace_one({"_id": name}, {"_id": name, "report_time": now,
                                                "stats": json.dumps(stats)}, upsert=True)

    def executor_stats(self, since: str) -> list[dict[str, Any]]:
        docs = self._stats.find({"report_time": {"$gte": since}}).sort("_id", 1)
        return [{**json.loads(d["stats"]), "name": d["_id"], "report_time": d["report_time"]}
                for d in docs]

    def add_webhook(self, task_id: str, url: str) -> None:
        import pymongo.errors

        doc = {"_id": task_id, "url": url, "state": "pending", "attempts": 0, "next_at": "",
               "lease_until": "", "last_status": None, "last_error": "", "delivered_at": ""}
        try:
            self._hooks.insert_one(doc)
        except pymongo.errors.DuplicateKeyError:
            pass

    @staticmethod
    def _out(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        return {"task_id": doc["_id"], **{k: doc.get(k) for k in WEBHOOK_FIELDS[1:]}}

    def webhook(self, task_id: str) -> dict[str, Any] | None:
        return self._out(self._hooks.find_one({"_id": task_id}))

    def webhooks_ready(self, task_ids: list[str], now: str) -> int:
        return int(self._hooks.update_many({"_id": {"$in": task_ids}, "state": "pending"},
                                           {"$set": {"state": "ready", "next_at": now}}
                                           ).modified_count)

    def pending_webhooks(self, limit: int, after: str = "") -> list[str]:
        found = self._hooks.find({"state": "pending", "_id": {"$gt": after}}, {"_id": 1})
        return [d["_id"] for d in found.sort("_id", 1).limit(limit)]

    def claim_webhook(self, now: str, lease_until: str) -> dict[str, Any] | None:
        due = {"$or": [{"state": "ready", "next_at": {"$lte": now}},
                       {"state": "sending", "lease_until": {"$lt": now}}]}
        doc = self._hooks.find_one_and_update(
            due, {"$set": {"state": "sending", "lease_until": lease_until}},
            sort=[("next_at", 1)], return_document=True)
        return self._out(doc)

    def webhook_attempted(self, task_id: str, changes: dict[str, Any]) -> None:
        sets = {k: v for k, v in changes.items() if k in WEBHOOK_FIELDS[1:]}
        self._hooks.update_one({"_id": task_id}, {"$set": sets})

    def close(self) -> None:
        self._client.close()


def open_ops_store(url: str) -> OpsStore:
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        return SqliteOpsStore(path)
    return MongoOpsStore(url)
