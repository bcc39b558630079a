"""A task's row and its body in the SQLite store.

The body — the execute input and standard, each case's, and the two zips — is written once and
never changed, but it is most of a task's bytes (a case of 1 MB is 1 MB of spec). SQLite writes
a record anew on any update of it, so a body kept in the task's row was rewritten whole by every
status change (assigned, running, finished). It lives in `task_bodies` instead, and the row keeps
the spec without its texts (khala/store/codec.py, `spec_to_json(texts=False)`). A task stored
before the table has no body row: its row holds everything, and reads as it always did.
"""

from __future__ import annotations

import sqlite3

from khala.model import Task
from khala.store.codec import (
    brief_from_row,
    pack_texts,
    result_from_json,
    result_to_json,
    spec_from_json,
    spec_to_json,
    task_needs,
    with_texts,
)

BODY_SCHEMA = """
CREATE TABLE IF NOT EXISTS task_bodies (
    id TEXT PRIMARY KEY,
    texts BLOB NOT NULL,
    compile_source BLOB NOT NULL,
    execute_data BLOB NOT NULL
);
"""
#: A whole task's columns and tables: its row, and its body (NULLs for a task stored before
#: task_bodies).
WHOLE = ("tasks.*, b.id IS NOT NULL AS has_body, b.texts AS body_texts,"
         " b.compile_source AS body_source, b.execute_data AS body_data"
         " FROM tasks LEFT JOIN task_bodies AS b ON b.id = tasks.id")
#: The same without the texts (Store.get's lean form: its cases' texts empty).
LEAN = WHOLE.replace("b.texts AS body_texts", "NULL AS body_texts")


def insert_task(conn: sqlite3.Connection, task: Task) -> None:
    """The task's row, then its body (inside the caller's transaction: both or neither).
    Raises sqlite3.IntegrityError, before anything is written, for an id taken."""
    conn.execute(
        "INSERT INTO tasks (id, user, add_time, done, status, executor, report_time,"
        " needs, imaged, spec, compile_source, execute_data, result, priority)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (task.id, task.user, task.add_time, int(task.done), int(task.status), task.executor,
         task.report_time, *task_needs(task), spec_to_json(task, texts=False), b"", b"",
         result_to_json(task.result), int(task.priority)),
    )
    conn.execute(
        "INSERT INTO task_bodies (id, texts, compile_source, execute_data) VALUES (?,?,?,?)",
        (task.id, pack_texts(task), task.compile.source, task.execute.data),
    )


def task_from_row(row: sqlite3.Row) -> Task:
    """A task read with WHOLE's or LEAN's columns (and perhaps its key)."""
    whole = not row["has_body"]  # stored before task_bodies: the row holds everything
    compile_part, execute_part, callback_url = spec_from_json(
        row["spec"], bytes(row["compile_source" if whole else "body_source"]),
        bytes(row["execute_data" if whole else "body_data"]))
    if not whole and row["body_texts"] is not None:
        execute_part = with_texts(execute_part, row["body_texts"])
    brief = brief_from_row(row)
    return Task(
        id=brief.id,
        user=brief.user,
        compile=compile_part,
        execute=execute_part,
        add_time=brief.add_time,
        done=brief.done,
        status=brief.status,
        executor=brief.executor,
        report_time=brief.report_time,
        result=result_from_json(row["result"]),
        key=row["key"] if "key" in row.keys() else None,  # noqa: SIM118 - Row iterates values
        priority=int(row["priority"] or 0),
        callback_url=callback_url,
    )
