"""The SQLite store's searches (the seed API's task list, API v2's pages) and the exact counts
behind a search's total, kept by triggers so that counting never walks every match.

`task_tally` holds, per (user, span, bucket), how many tasks are stored: user −1 is everyone
(real users are ≥ 0); span 0 with bucket '' is the total; spans 10, 13, 16 and 19 count
everyone's tasks per `add_time` prefix of that length (day, hour, minute, second). A time
window's count is the sum of the buckets wholly inside it (`window_parts`: the days between,
then at most 2 × 24 hours, 2 × 60 minutes, 2 × 60 seconds) plus its two edge seconds counted
through the `add_time` index. A user's total is one row; a user *and* a window are counted
through `tasks_user_add_time` (linear in that user's tasks in the window). Each insert costs
6 upserts (≈ +50–70 µs, docs/performance.md). Changing SPANS needs a new table name: a file
is filled once. Mixed into SqliteStore (which provides `_conn`).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from khala.model import PageQuery, SearchQuery, TaskBrief
from khala.store.codec import brief_from_row, key_range

EVERYONE = -1  # task_tally's user for counts over all users
SPANS = (10, 13, 16, 19)  # add_time prefixes counted: day, hour, minute, second
TOP = "\uffff"  # sorts after every character of a stored time: p + TOP bounds prefix p

BRIEF_COLUMNS = "id, user, add_time, done, status, executor, report_time"
KEY_OF = "(SELECT key FROM task_keys WHERE task_keys.task_id = tasks.id LIMIT 1) AS key"

# (user, span, bucket) of the tally rows an inserted task (NEW) counts in.
_PARTS = [(str(EVERYONE), "0", "''"), ("NEW.user", "0", "''")] + [
    (str(EVERYONE), str(s), f"substr(NEW.add_time, 1, {s})") for s in SPANS
]
_KEYS = [f"({user}, {span}, {bucket}, 1)" for user, span, bucket in _PARTS]
TALLY = [
    """CREATE TABLE task_tally (
        user INTEGER NOT NULL,
        span INTEGER NOT NULL,
        bucket TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (user, span, bucket)
    ) WITHOUT ROWID""",
    "CREATE TRIGGER task_tally_add AFTER INSERT ON tasks BEGIN "
    + "".join(
        f"INSERT INTO task_tally (user, span, bucket, n) VALUES {key}"
        " ON CONFLICT (user, span, bucket) DO UPDATE SET n = n + 1; "
        for key in _KEYS
    )
    + "END",
    "CREATE TRIGGER task_tally_remove AFTER DELETE ON tasks BEGIN "
    + "".join(
        f"UPDATE task_tally SET n = n - 1 WHERE user = {user} AND span = {span}"
        f" AND bucket = {bucket}; "
        for user, span, bucket in _PARTS
    ).replace("NEW.", "OLD.")
    + "END",
]
TALLY_FILL = [
    f"INSERT INTO task_tally SELECT {EVERYONE}, 0, '', COUNT(*) FROM tasks",
    "INSERT INTO task_tally SELECT user, 0, '', COUNT(*) FROM tasks GROUP BY user",
    *(
        f"INSERT INTO task_tally SELECT {EVERYONE}, {s}, substr(add_time, 1, {s}), COUNT(*)"
        f" FROM tasks GROUP BY 3"
        for s in SPANS
    ),
]
# The single counter of the previous schema (the total only), replaced by task_tally.
OLD_COUNTER = [
    "DROP TRIGGER IF EXISTS task_count_add",
    "DROP TRIGGER IF EXISTS task_count_remove",
    "DROP TABLE IF EXISTS task_count",
]


def install_tally(conn: sqlite3.Connection) -> None:
    """Create and fill task_tally and its triggers unless the file has them (a file from an
    older schema is counted once, in the same transaction: no insert can slip between)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'task_tally'").fetchone():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'task_tally'").fetchone():
            for statement in [*OLD_COUNTER, *TALLY, *TALLY_FILL]:
                conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def window_parts(start: str, end: str) -> tuple[list[tuple[int, str, str]], list[str]]:
    """The inclusive time window [start, end] as task_tally ranges (span, lo, hi) — the buckets
    b of that span with lo <= b < hi, each wholly inside the window, no task in two of them —
    and the prefixes of span SPANS[-1] (the window's edges) whose tasks in the window are not
    in those buckets and must be counted from the index. Pure string logic over prefixes:
    bucket p holds the times that start with p; it is wholly inside when start <= p (its
    times are >= p) and p < end[:len(p)] (they are < end). A time in the window whose bucket
    of span S is inside but not its bucket of the span above is in an edge bucket of that
    span (the one starting start's or end's prefix), so each range below the top one looks
    only at the children of those two."""
    ranges = [(SPANS[0], start, end[: SPANS[0]])]
    for parent, span in zip(SPANS, SPANS[1:], strict=False):
        for prefix in sorted({start[:parent], end[:parent]}):
            if len(prefix) == parent and not _inside(prefix, start, end):
                ranges.append((span, max(start, prefix), min(end[:span], prefix + TOP)))
    finest = SPANS[-1]
    edges = sorted(p for p in {start[:finest], end[:finest]}
                   if len(p) == finest and not _inside(p, start, end))
    return ranges, edges


def _inside(prefix: str, start: str, end: str) -> bool:
    return start <= prefix < end[: len(prefix)]


def count_window(conn: sqlite3.Connection, start: str, end: str) -> int:
    """The number of tasks with start <= add_time <= end, from task_tally and two edges."""
    if start > end:
        return 0
    ranges, edges = window_parts(start, end)
    total = 0
    for span, lo, hi in ranges:
        if lo < hi:
            total += conn.execute(
                "SELECT COALESCE(SUM(n), 0) FROM task_tally"
                " WHERE user = ? AND span = ? AND bucket >= ? AND bucket < ?",
                (EVERYONE, span, lo, hi),
            ).fetchone()[0]
    for prefix in edges:  # one lower and one upper bound, so that both bound the index range
        lo, below = max(start, prefix), prefix + TOP
        upper = ("add_time <= ?", end) if end < below else ("add_time < ?", below)
        total += conn.execute(
            f"SELECT COUNT(*) FROM tasks WHERE add_time >= ? AND {upper[0]}", (lo, upper[1])
        ).fetchone()[0]
    return int(total)


def count_matches(conn: sqlite3.Connection, query: SearchQuery) -> int:
    """A search's total: from task_tally when the filter is everyone, one user or one window
    (no id); else counted through the indexes."""
    windowed = query.start_time is not None or query.end_time is not None
    if query.id is None and not windowed:
        user = EVERYONE if query.user is None else query.user
        row = conn.execute(
            "SELECT n FROM task_tally WHERE user = ? AND span = 0 AND bucket = ''", (user,)
        ).fetchone()
        return 0 if row is None else int(row[0])
    if query.id is None and query.user is None:
        start = "" if query.start_time is None else query.start_time
        return count_window(conn, start, TOP if query.end_time is None else query.end_time)
    clauses, params = search_filter(query)
    sql = f"SELECT COUNT(*) FROM tasks WHERE {' AND '.join(clauses)}"
    return int(conn.execute(sql, params).fetchone()[0])


def search_filter(query: SearchQuery) -> tuple[list[str], list[object]]:
    """A search's conditions (those it sets) and their parameters."""
    wanted = (("id = ?", query.id), ("user = ?", query.user),
              ("add_time >= ?", query.start_time), ("add_time <= ?", query.end_time))
    given = [(clause, value) for clause, value in wanted if value is not None]
    return [clause for clause, _ in given], [value for _, value in given]


class SqliteSearch:
    def _conn(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # SqliteStore's

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        clauses, params = search_filter(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if query.old_to_new else "DESC"
        sql = f"SELECT {BRIEF_COLUMNS} FROM tasks {where} ORDER BY add_time {order}, id {order}"
        if query.limit:
            sql += f" LIMIT {int(query.limit)} OFFSET {int(query.limit) * int(query.page)}"
        with self._conn() as conn:
            total = count_matches(conn, query)
            rows = conn.execute(sql, params).fetchall() if total else []
        return total, [brief_from_row(r) for r in rows]

    def page(self, query: PageQuery) -> list[TaskBrief]:
        clauses, params = search_filter(SearchQuery(
            user=query.user, start_time=query.start_time, end_time=query.end_time
        ))
        if query.statuses:
            clauses.append(f"status IN ({','.join('?' * len(query.statuses))})")
            params.extend(int(s) for s in query.statuses)
        after = ">" if query.old_to_new else "<"
        if query.after_time is not None and query.after_id is not None:
            clauses.append(f"(add_time {after} ? OR (add_time = ? AND id {after} ?))")
            params.extend([query.after_time, query.after_time, query.after_id])
        if query.key_prefix:  # a range of the keys' primary index
            clauses.append("id IN (SELECT task_id FROM task_keys WHERE key >= ? AND key < ?)")
            params.extend(key_range(query.key_prefix))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if query.old_to_new else "DESC"
        sql = (
            f"SELECT {BRIEF_COLUMNS}, {KEY_OF} FROM tasks {where}"
            f" ORDER BY add_time {order}, id {order} LIMIT ?"
        )
        with self._conn() as conn:
            rows = conn.execute(sql, [*params, int(query.limit)]).fetchall()
        return [_brief_with_key(r) for r in rows]


def _brief_with_key(row: sqlite3.Row) -> TaskBrief:
    brief = brief_from_row(row)
    brief.key = row["key"]
    return brief
