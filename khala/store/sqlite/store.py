"""SQLite store: the embedded default for a single judicator.

WAL mode, one connection per thread, every conditional update inside one statement or one
IMMEDIATE transaction so concurrent callers cannot both win.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from khala.errors import ConfigError
from khala.model import (
    ExecutorInfo,
    Language,
    Result,
    Status,
    Task,
    TaskBrief,
    new_id,
)
from khala.rules import lifecycle
from khala.rules.states import Bound, Cond
from khala.store.base import Store
from khala.store.codec import (
    brief_from_row,
    languages_from_json,
    languages_to_json,
    merge_languages,
)
from khala.store.files import task_owner
from khala.store.sqlite.bodies import BODY_SCHEMA, LEAN, WHOLE, insert_task, task_from_row
from khala.store.sqlite.connections import Connections
from khala.store.sqlite.files import SqliteFiles, files_root
from khala.store.sqlite.images import SqliteImages
from khala.store.sqlite.jobs import SqliteJobs, fair_candidates
from khala.store.sqlite.ops import SqliteOpsStore
from khala.store.sqlite.problems import SqliteProblems, SqliteProblemTasks, install_problem_tasks
from khala.store.sqlite.search import BRIEF_COLUMNS, KEY_OF, SqliteSearch, install_tally
from khala.store.sqlite.translate import (
    IMAGED_FROM_SPEC,
    NEEDS_FROM_SPEC,
    assign_where,
    sql_where,
    update,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    user INTEGER NOT NULL,
    add_time TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL DEFAULT 0,
    executor TEXT,
    report_time TEXT NOT NULL DEFAULT '',
    needs TEXT NOT NULL DEFAULT '[]',
    imaged INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL,
    compile_source BLOB NOT NULL,
    execute_data BLOB NOT NULL,
    result TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    outputs BLOB
);
CREATE INDEX IF NOT EXISTS tasks_add_time ON tasks (add_time, id);
CREATE INDEX IF NOT EXISTS tasks_user_add_time ON tasks (user, add_time, id);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (done, executor, add_time, id);
CREATE INDEX IF NOT EXISTS tasks_held ON tasks (executor, done, report_time);
CREATE TABLE IF NOT EXISTS executors (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL UNIQUE,
    report_time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executors_report_time ON executors (report_time);
CREATE TABLE IF NOT EXISTS task_keys (
    key TEXT PRIMARY KEY,
    task_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS task_keys_task ON task_keys (task_id);
CREATE TABLE IF NOT EXISTS signals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    signum INTEGER NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_task ON signals (task_id, seq);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0
);
"""
# Columns added after the first schema: (table, column, definition), added when missing.
MIGRATIONS = (("executors", "languages", "TEXT NOT NULL DEFAULT '[]'"),
              ("tasks", "outputs", "BLOB"))

# After the migration of older files (add_priority, add_needs): fair dispatch's lookups
# (khala/rules/dispatch.py): per user (tasks_fair) and the queue in time order (tasks_head),
# both covering, an executor's languages and images included (translate.assign_where).
FAIR_INDEXES = (
    ("tasks_fair", "(done, executor, priority, user, add_time, id, status, needs, imaged)"),
    ("tasks_head", "(done, executor, priority, add_time, id, user, status, needs, imaged)"),
)


def add_needs(conn: sqlite3.Connection) -> None:
    """A store file from before the `needs` and `imaged` columns gets them, filled from the
    stored spec of each task not done (a done task is queued again only by a rejudge, which
    sets them). The caller's transaction makes it all or nothing: a start killed midway
    leaves the file as it was, to be migrated by the next."""
    columns = {r["name"] for r in conn.execute("PRAGMA table_info(tasks)")}
    if "needs" in columns:
        return
    conn.execute("ALTER TABLE tasks ADD COLUMN needs TEXT NOT NULL DEFAULT '[]'")
    conn.execute("ALTER TABLE tasks ADD COLUMN imaged INTEGER NOT NULL DEFAULT 0")
    conn.execute(f"UPDATE tasks SET needs = {NEEDS_FROM_SPEC}, imaged = {IMAGED_FROM_SPEC}"
                 " WHERE done = 0")


def fair_indexes(conn: sqlite3.Connection) -> None:
    """FAIR_INDEXES, an older one of the same name (without the newer columns) replaced."""
    for name, columns in FAIR_INDEXES:
        have = [r["name"] for r in conn.execute(f"PRAGMA index_info({name})")]
        if have and have != [c.strip() for c in columns.strip("()").split(",")]:
            conn.execute(f"DROP INDEX {name}")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON tasks {columns}")


class SqliteStore(SqliteSearch, SqliteJobs, SqliteProblemTasks, Store):
    def __init__(self, path: str) -> None:
        self._connections = Connections(path)
        with self._conn() as conn:
            conn.executescript(SCHEMA + BODY_SCHEMA)
            columns = {r[1] for r in conn.execute("PRAGMA table_info(tasks)")}
            if "priority" not in columns:  # a store file from before priorities
                conn.execute("ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")
            for table, column, definition in MIGRATIONS:
                have = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            install_tally(conn)  # the counts of searches (khala/store/sqlite/search.py)
        with self._transaction() as conn:
            add_needs(conn)
            fair_indexes(conn)
            install_problem_tasks(conn)
        self.ops = SqliteOpsStore(self._connections)
        self.files = SqliteFiles(self._connections, files_root(path))
        self.problems = SqliteProblems(self._connections)
        self.images = SqliteImages(self._connections)

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        prefix = "sqlite://"
        path = url[len(prefix) :]
        if not path or path == "/":
            raise ConfigError(f"store URL {url!r} names no file: use sqlite:///path/khala.db")
        if path.startswith("/") and not path.startswith("//"):
            path = path  # sqlite:///abs/path → /abs/path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        return cls(path)

    # ------------------------------------------------------------------ connections

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        yield self._connections.get()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.transaction()

    def release_thread(self) -> None:
        self._connections.release_thread()

    def close(self) -> None:
        self._connections.close()

    # ------------------------------------------------------------------ tasks (clients)

    def add(self, task: Task) -> str:
        with self._transaction() as conn:
            insert_task(conn, task)
        return task.id

    def get(self, task_id: str, lean: bool = False) -> Task | None:
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT {KEY_OF}, {LEAN if lean else WHOLE} WHERE tasks.id = ?", (task_id,)
            ).fetchone()
        return None if row is None else task_from_row(row)

    def cancel(self, task_id: str, now: str) -> bool:
        return self._change(task_id, lifecycle.CANCEL.bind(now=now))

    # ------------------------------------------------------------------ tasks (executors)

    def assign(self, executor: str, count: int, now: str,
               languages: frozenset[str] | None = None, images: bool = True) -> list[Task]:
        if count <= 0:
            return []
        extra = assign_where(languages, images)
        with self._transaction() as conn:
            ids = [c.id for c in fair_candidates(conn, count, extra)][:count]
            change = lifecycle.ASSIGN.bind(executor=executor, now=now)
            taken = [i for i in ids if update(conn, "tasks", ("id", i), change)]
            rows = [conn.execute(f"SELECT {WHOLE} WHERE tasks.id = ?", (i,)).fetchone()
                    for i in taken]
        return [task_from_row(r) for r in rows]

    def has_queued(self) -> bool:
        queued, params = sql_where(lifecycle.QUEUED)
        with self._conn() as conn:
            row = conn.execute(f"SELECT 1 FROM tasks WHERE {queued} LIMIT 1", params).fetchone()
        return row is not None

    def finish(
        self, task_id: str, executor: str, status: Status, result: Result, now: str
    ) -> bool:
        change = lifecycle.FINISH.bind(executor=executor, status=status, result=result, now=now)
        return self._change(task_id, change)

    def keep(self, task_id: str, executor: str, result: Result) -> bool | None:
        return self._change(task_id, lifecycle.KEEP.bind(executor=executor, result=result))

    def progress(self, task_id: str, executor: str, status: Status, now: str) -> bool:
        change = lifecycle.PROGRESS.bind(executor=executor, status=status, now=now)
        return self._change(task_id, change)

    def held_by(self, executor: str) -> list[TaskBrief]:
        return self._briefs(lifecycle.select(lifecycle.HELD, executor=executor))

    def requeue(self, task_id: str, executor: str, now: str) -> bool:
        return self._change(task_id, lifecycle.REQUEUE.bind(executor=executor, now=now))

    def stale_tasks(self, before: str) -> list[TaskBrief]:
        return self._briefs(lifecycle.select(lifecycle.STALE, before=before))

    def _change(self, task_id: str, change: Bound) -> bool:
        with self._conn() as conn:
            return update(conn, "tasks", ("id", task_id), change)

    def _briefs(self, where: Mapping[str, Cond]) -> list[TaskBrief]:
        clause, params = sql_where(where)
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {BRIEF_COLUMNS} FROM tasks WHERE {clause}", params
            ).fetchall()
        return [brief_from_row(r) for r in rows]

    # ------------------------------------------------------------------ executors

    def touch_executor(self, hostname: str, now: str,
                       languages: list[Language] | None = None) -> None:
        with self._conn() as conn:
            if languages is None:
                conn.execute(
                    "INSERT INTO executors (id, hostname, report_time) VALUES (?, ?, ?)"
                    " ON CONFLICT (hostname) DO UPDATE SET report_time = excluded.report_time",
                    (new_id(), hostname, now),
                )
                return
            conn.execute(
                "INSERT INTO executors (id, hostname, report_time, languages) VALUES (?,?,?,?)"
                " ON CONFLICT (hostname) DO UPDATE SET report_time = excluded.report_time,"
                " languages = excluded.languages",
                (new_id(), hostname, now, languages_to_json(languages)),
            )

    def languages(self, since: str) -> list[Language]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT hostname, languages FROM executors WHERE report_time >= ?", (since,)
            ).fetchall()
        return merge_languages([languages_from_json(r[1]) for r in rows], [r[0] for r in rows])

    def executors(self, since: str) -> list[ExecutorInfo]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, hostname, report_time FROM executors WHERE report_time >= ?"
                " ORDER BY hostname",
                (since,),
            ).fetchall()
        return [ExecutorInfo(r["id"], r["hostname"], r["report_time"]) for r in rows]

    def remove_executors(self, before: str) -> list[str]:
        with self._conn() as conn:
            rows = conn.execute(
                "DELETE FROM executors WHERE report_time < ? RETURNING hostname", (before,)
            ).fetchall()
        return [r[0] for r in rows]

    def remove_executor(self, hostname: str) -> bool:
        with self._conn() as conn:
            cursor = conn.execute("DELETE FROM executors WHERE hostname = ?", (hostname,))
        return cursor.rowcount > 0


    # ------------------------------------------------------------------ API v2

    def claim_key(self, key: str, task_id: str) -> str:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO task_keys (key, task_id) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, task_id),
            )
            row = conn.execute("SELECT task_id FROM task_keys WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    def insert_new(self, task: Task) -> bool:
        try:
            self.add(task)
        except sqlite3.IntegrityError:
            return False
        return True

    def resolve(self, ref: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute("SELECT task_id FROM task_keys WHERE key = ?", (ref,)).fetchone()
            if row is not None:
                return str(row[0])
            row = conn.execute("SELECT id FROM tasks WHERE id = ?", (ref,)).fetchone()
        return None if row is None else str(row[0])

    def remove(self, task_id: str) -> bool:
        with self._transaction() as conn:
            cur = conn.execute("DELETE FROM tasks WHERE id = ? AND done = 1", (task_id,))
            if cur.rowcount != 1:
                return False
            conn.execute("DELETE FROM task_bodies WHERE id = ?", (task_id,))
            conn.execute("DELETE FROM task_keys WHERE task_id = ?", (task_id,))
            conn.execute("DELETE FROM signals WHERE task_id = ?", (task_id,))
            conn.execute("DELETE FROM task_history WHERE task_id = ?", (task_id,))
        self.files.release(task_owner(task_id))  # its outputs kept as files, if any
        return True

    def add_signal(self, task_id: str, signum: int, now: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO signals (task_id, signum, at) VALUES (?, ?, ?)",
                (task_id, int(signum), now),
            )

    def take_signals(self, task_ids: list[str]) -> list[tuple[str, int]]:
        if not task_ids:
            return []
        marks = ",".join("?" * len(task_ids))
        with self._conn() as conn:
            rows = conn.execute(
                f"DELETE FROM signals WHERE task_id IN ({marks})"
                " RETURNING seq, task_id, signum, at",
                list(task_ids),
            ).fetchall()
        # in the order they were sent (their add time; then as stored)
        return [(str(r[1]), int(r[2])) for r in sorted(rows, key=lambda r: (r[3], int(r[0])))]
