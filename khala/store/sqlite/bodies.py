"""A task's row and its body in the SQLite store.

The body — the two zips, the execute input and standard, each case's — is written once and
never changed, but it is most of a task's bytes (a case of 1 MB is 1 MB of spec). SQLite writes
a record anew on any update of it, so a body kept in the task's row was rewritten whole by every
status change (assigned, running, finished). It lives in `task_bodies` instead, and the row keeps
the spec without them (khala/store/codec.py, `without_body`). A task stored
before the table has no body row: its row holds everything, and reads as it always did.

A result's two standard outputs are kept apart from its JSON too, as raw bytes in the row's
`outputs` column (khala/store/codec.py, `pack_outputs`; translate.py's `sql_set` writes both):
base64 in JSON cost a third more bytes and an encoding each way, and a lean read skips them.
A result written before the column has them in its JSON (`outputs` NULL).
"""

from __future__ import annotations

import sqlite3

from khala.model import Task
from khala.store.codec import (
    brief_from_row,
    pack_outputs,
    pack_texts,
    result_from_json,
    result_to_json,
    spec_from_json,
    spec_to_json,
    task_needs,
    with_outputs,
    with_texts,
    without_body,
)

BODY_SCHEMA = """
CREATE TABLE IF NOT EXISTS task_bodies (
    id TEXT PRIMARY KEY,
    compile_source BLOB NOT NULL,
    execute_data BLOB NOT NULL,
    io BLOB NOT NULL,
    texts BLOB NOT NULL
);
"""
#: A whole task's columns and tables: its row, and its body (NULLs for a task stored before
#: task_bodies).
WHOLE = ("tasks.id, tasks.user, tasks.add_time, tasks.done, tasks.status, tasks.executor,"
         " tasks.report_time, tasks.spec, tasks.compile_source, tasks.execute_data,"
         " tasks.result, tasks.outputs, tasks.priority,"
         " b.id IS NOT NULL AS has_body, b.compile_source AS body_source,"
         " b.execute_data AS body_data, b.io AS body_io, b.texts AS body_texts"
         " FROM tasks LEFT JOIN task_bodies AS b ON b.id = tasks.id")
#: The same without the cases' texts and the steps' standard outputs (Store.get's lean
#: form: both empty). The cases' texts are the body's last column: SQLite reads a record's
#: columns in order, through the overflow pages of every one before, so a lean read never
#: walks them.
LEAN = (WHOLE.replace("b.texts AS body_texts", "NULL AS body_texts")
        .replace("tasks.outputs", "NULL AS outputs"))


def insert_task(conn: sqlite3.Connection, task: Task) -> None:
    """The task's row, then its body (inside the caller's transaction: both or neither).
    Raises sqlite3.IntegrityError, before anything is written, for an id taken."""
    conn.execute(
        "INSERT INTO tasks (id, user, add_time, done, status, executor, report_time,"
        " needs, imaged, spec, compile_source, execute_data, result, outputs, priority)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (task.id, task.user, task.add_time, int(task.done), int(task.status), task.executor,
         task.report_time, *task_needs(task), spec_to_json(without_body(task)), b"", b"",
         result_to_json(task.result, apart=True), pack_outputs(task.result),
         int(task.priority)),
    )
    conn.execute(
        "INSERT INTO task_bodies (id, compile_source, execute_data, io, texts)"
        " VALUES (?,?,?,?,?)",
        (task.id, task.compile.source, task.execute.data, *pack_texts(task)),
    )


def task_from_row(row: sqlite3.Row) -> Task:
    """A task read with WHOLE's or LEAN's columns (and perhaps its key)."""
    in_row = not row["has_body"]  # stored before task_bodies: the row holds everything
    compile_part, execute_part, callback_url = spec_from_json(
        row["spec"], bytes(row["compile_source" if in_row else "body_source"]),
        bytes(row["execute_data" if in_row else "body_data"]))
    if not in_row:
        execute_part = with_texts(execute_part, row["body_io"], row["body_texts"])
    brief = brief_from_row(row)
    result = result_from_json(row["result"])
    if result is not None and row["outputs"] is not None:  # else: in the JSON (older rows)
        result = with_outputs(result, row["outputs"])
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
        result=result,
        key=row["key"] if "key" in row.keys() else None,  # noqa: SIM118 - Row iterates values
        priority=int(row["priority"] or 0),
        callback_url=callback_url,
    )
