"""The SQLite backend's problems (khala/store/problems.py), on the task store's connections;
and the task side of problems (which tasks name a version, rejudging one, their history) as a
mixin of SqliteStore."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from typing import Any

from khala.files.refs import FileRef
from khala.model import REJUDGE_PRIORITY, Judged, ProblemRef, Status
from khala.problems.model import ProblemInfo, Rejudge, RejudgeCounts, VerdictChange, VersionInfo
from khala.rules import lifecycle
from khala.store.codec import judged_from_dict, judged_to_dict
from khala.store.problems import ProblemStore
from khala.store.sqlite.connections import Connections
from khala.store.sqlite.translate import IMAGED_FROM_SPEC, NEEDS_FROM_SPEC, sql_set, sql_where

PROBLEMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS problems (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, created TEXT NOT NULL,
    next_version INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS problem_versions (
    problem TEXT NOT NULL, version INTEGER NOT NULL, spec TEXT NOT NULL, size INTEGER NOT NULL,
    created TEXT NOT NULL, summary TEXT NOT NULL, deleting INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (problem, version));
CREATE TABLE IF NOT EXISTS rejudges (
    id TEXT PRIMARY KEY, problem TEXT NOT NULL, created TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rejudges_problem ON rejudges (problem, created);
CREATE TABLE IF NOT EXISTS task_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, entry TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS task_history_task ON task_history (task_id, seq);
"""
#: The problem a task names, read from its stored spec (indexed below).
PROBLEM_ID = "json_extract(spec, '$.execute.problem.id')"
PROBLEM_JUDGED = "json_extract(spec, '$.execute.problem.judged')"
VERDICT = "json_extract(result, '$.judgement.verdict')"
TASK_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS tasks_problem ON tasks ({PROBLEM_ID}, id)",
    "CREATE INDEX IF NOT EXISTS tasks_rejudge ON tasks (rejudge, done)",
)
#: The statuses of a task being judged now (the others of an undone task wait in the queue).
RUNNING = frozenset({int(Status.COMPILING), int(Status.RUNNING)})
REJUDGE_FIELDS = ("version", "from_version", "user", "verdict", "state", "cursor", "total",
                  "detail")


def install_problem_tasks(conn: sqlite3.Connection) -> None:
    """The tasks table's problem column and indexes (a store file from before problems gets
    them added)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(tasks)")}
    if "rejudge" not in columns:
        conn.execute("ALTER TABLE tasks ADD COLUMN rejudge TEXT")
    for index in TASK_INDEXES:
        conn.execute(index)


def _version(row: sqlite3.Row) -> VersionInfo:
    return VersionInfo(problem=row["problem"], version=int(row["version"]),
                       spec=FileRef(row["spec"], int(row["size"])), created=row["created"],
                       summary=json.loads(row["summary"]), deleting=bool(row["deleting"]))


def _rejudge(row: sqlite3.Row) -> Rejudge:
    doc = json.loads(row["doc"])
    return Rejudge(problem=row["problem"], id=row["id"], created=row["created"],
                   **{k: doc.get(k) for k in REJUDGE_FIELDS if k in doc})


class SqliteProblems(ProblemStore):
    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        connections.get().executescript(PROBLEMS_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def create(self, problem: str, title: str, now: str) -> bool:
        cur = self._conn().execute(
            "INSERT INTO problems (id, title, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (problem, title, now))
        return cur.rowcount == 1

    def retitle(self, problem: str, title: str) -> bool:
        cur = self._conn().execute("UPDATE problems SET title = ? WHERE id = ?", (title, problem))
        return cur.rowcount == 1

    def _info(self, row: sqlite3.Row) -> ProblemInfo:
        versions = self._conn().execute(
            "SELECT * FROM problem_versions WHERE problem = ? ORDER BY version",
            (row["id"],)).fetchall()
        return ProblemInfo(id=row["id"], title=row["title"], created=row["created"],
                           versions=[_version(v) for v in versions])

    def get(self, problem: str) -> ProblemInfo | None:
        row = self._conn().execute("SELECT * FROM problems WHERE id = ?", (problem,)).fetchone()
        return None if row is None else self._info(row)

    def all(self) -> list[ProblemInfo]:
        rows = self._conn().execute("SELECT * FROM problems ORDER BY id").fetchall()
        return [self._info(r) for r in rows]

    def add_version(self, problem: str, spec: FileRef, summary: dict[str, Any],
                    now: str) -> int:
        with self._connections.transaction() as tx:
            row = tx.execute("UPDATE problems SET next_version = next_version + 1 WHERE id = ?"
                             " RETURNING next_version - 1", (problem,)).fetchone()
            if row is None:
                raise KeyError(problem)
            number = int(row[0])
            tx.execute("INSERT INTO problem_versions (problem, version, spec, size, created,"
                       " summary) VALUES (?, ?, ?, ?, ?, ?)",
                       (problem, number, spec.sha256, spec.size, now, json.dumps(summary)))
        return number

    def version(self, problem: str, version: int) -> VersionInfo | None:
        row = self._conn().execute(
            "SELECT * FROM problem_versions WHERE problem = ? AND version = ?",
            (problem, version)).fetchone()
        return None if row is None else _version(row)

    def mark_version(self, problem: str, version: int, deleting: bool) -> bool:
        cur = self._conn().execute(
            "UPDATE problem_versions SET deleting = ? WHERE problem = ? AND version = ?",
            (int(deleting), problem, version))
        return cur.rowcount == 1

    def delete_version(self, problem: str, version: int) -> bool:
        cur = self._conn().execute(
            "DELETE FROM problem_versions WHERE problem = ? AND version = ?", (problem, version))
        return cur.rowcount == 1

    def delete(self, problem: str) -> bool:
        cur = self._conn().execute(
            "DELETE FROM problems WHERE id = ? AND NOT EXISTS (SELECT 1 FROM problem_versions"
            " WHERE problem = ?)", (problem, problem))
        return cur.rowcount == 1

    # ------------------------------------------------------------------ rejudges

    def add_rejudge(self, rejudge: Rejudge) -> None:
        self._conn().execute(
            "INSERT INTO rejudges (id, problem, created, doc) VALUES (?, ?, ?, ?)",
            (rejudge.id, rejudge.problem, rejudge.created, _rejudge_doc(rejudge)))

    def rejudge(self, rejudge_id: str) -> Rejudge | None:
        row = self._conn().execute("SELECT * FROM rejudges WHERE id = ?",
                                   (rejudge_id,)).fetchone()
        return None if row is None else _rejudge(row)

    def rejudges(self, problem: str | None = None) -> list[Rejudge]:
        if problem is None:
            rows = self._conn().execute("SELECT * FROM rejudges ORDER BY created, id")
        else:
            rows = self._conn().execute(
                "SELECT * FROM rejudges WHERE problem = ? ORDER BY created, id", (problem,))
        return [_rejudge(r) for r in rows.fetchall()]

    def save_rejudge(self, rejudge: Rejudge) -> None:
        self._conn().execute("UPDATE rejudges SET doc = ? WHERE id = ?",
                             (_rejudge_doc(rejudge), rejudge.id))


def _rejudge_doc(rejudge: Rejudge) -> str:
    return json.dumps({k: getattr(rejudge, k) for k in REJUDGE_FIELDS})


class SqliteProblemTasks:
    """SqliteStore's problem methods (khala/store/base.py, "problems")."""

    _connections: Connections

    def problem_named(self, problem: str, version: int | None = None) -> bool:
        sql = f"SELECT 1 FROM tasks WHERE {PROBLEM_ID} = ?"
        params: list[Any] = [problem]
        if version is not None:
            sql += f" AND {PROBLEM_JUDGED} = ?"
            params.append(version)
        return self._connections.get().execute(sql + " LIMIT 1", params).fetchone() is not None

    def problem_tasks(self, problem: str, after: str, limit: int,
                      version: int | None = None, user: int | None = None,
                      verdict: str | None = None) -> list[str]:
        where, params = sql_where(lifecycle.JUDGED)
        sql = f"SELECT id FROM tasks WHERE {PROBLEM_ID} = ? AND id > ? AND {where}"
        args: list[Any] = [problem, after, *params]
        for expr, value in ((PROBLEM_JUDGED, version), ("user", user), (VERDICT, verdict)):
            if value is not None:
                sql += f" AND {expr} = ?"
                args.append(value)
        rows = self._connections.get().execute(f"{sql} ORDER BY id LIMIT ?", (*args, limit))
        return [r[0] for r in rows.fetchall()]

    def rejudge_task(self, task_id: str, entry: Judged, problem: ProblemRef, rejudge: str,
                     now: str) -> bool:
        change = lifecycle.REJUDGE.bind(now=now)
        where, where_params = sql_where(change.where)
        sets, set_params = sql_set(change.sets)
        with self._connections.transaction() as tx:
            row = tx.execute(f"SELECT spec FROM tasks WHERE id = ? AND {where}",
                             (task_id, *where_params)).fetchone()
            if row is None:
                return False
            spec = json.loads(row[0])
            spec["execute"]["problem"] = asdict(problem)
            tx.execute(f"UPDATE tasks SET {sets}, spec = ?, priority = ?, rejudge = ?"
                       " WHERE id = ?",
                       (*set_params, json.dumps(spec), REJUDGE_PRIORITY, rejudge, task_id))
            # the new version's jury languages: what dispatch matches (translate.py)
            tx.execute(f"UPDATE tasks SET needs = {NEEDS_FROM_SPEC}, imaged = {IMAGED_FROM_SPEC}"
                       " WHERE id = ?", (task_id,))
            tx.execute("INSERT INTO task_history (task_id, entry) VALUES (?, ?)",
                       (task_id, json.dumps(judged_to_dict(entry))))
        return True

    def history(self, task_id: str) -> list[Judged]:
        rows = self._connections.get().execute(
            "SELECT entry FROM task_history WHERE task_id = ? ORDER BY seq", (task_id,))
        return [judged_from_dict(json.loads(r[0])) for r in rows.fetchall()]

    def rejudge_counts(self, rejudge: str) -> RejudgeCounts:
        rows = self._connections.get().execute(
            "SELECT done, status, COUNT(*) FROM tasks WHERE rejudge = ? GROUP BY done, status",
            (rejudge,)).fetchall()
        done = sum(int(n) for d, _, n in rows if d)
        running = sum(int(n) for d, s, n in rows if not d and s in RUNNING)
        queued = sum(int(n) for d, s, n in rows if not d and s not in RUNNING)
        return RejudgeCounts(done=done, queued=queued, running=running)

    def rejudge_changes(self, rejudge: str) -> list[VerdictChange]:
        before = "json_extract(h.entry, '$.judgement.verdict')"
        after = "json_extract(t.result, '$.judgement.verdict')"
        rows = self._connections.get().execute(
            f"SELECT IFNULL({before}, ''), IFNULL({after}, ''), COUNT(*) FROM tasks t"
            " JOIN task_history h ON h.task_id = t.id"
            " WHERE t.rejudge = ? AND t.done = 1 AND json_extract(h.entry, '$.rejudge') = ?"
            " GROUP BY 1, 2 ORDER BY 1, 2", (rejudge, rejudge)).fetchall()
        return [VerdictChange(str(b), str(a), int(n)) for b, a, n in rows if b != a]
