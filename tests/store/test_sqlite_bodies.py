"""The SQLite store keeps a task's body (its texts and zips) out of the task's row, which every
status change rewrites; tasks stored before that (their row holds everything) still read whole."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from khala.model import Case, Compile, Execute, Result, Status, Task, new_id
from khala.store.codec import (
    pack_outputs,
    pack_texts,
    result_to_json,
    spec_to_json,
    task_needs,
    with_outputs,
    with_texts,
)
from khala.store.sqlite import SqliteStore
from tests.store.test_contract import at

BIG = "1 2\n" * 100_000  # 400 KB: many overflow pages were it in the row


def big_task(seconds: float = 0) -> Task:
    return Task(id=new_id(), user=4, add_time=at(seconds),
                compile=Compile(source=b"PK-source" * 100, language="c"),
                execute=Execute(data=b"PK-data" * 100, cases=[
                    Case(BIG, "3\n" * 100_000, weight=2), Case("5 5", "10", timeout=1.5)]))


def row_and_body(path: Path, task_id: str) -> tuple[int, int]:
    """Bytes of the task's row (spec, zips, result) and of its body row (0: none)."""
    conn = sqlite3.connect(str(path))
    try:
        row = conn.execute("SELECT LENGTH(spec) + LENGTH(compile_source) + LENGTH(execute_data)"
                           " + COALESCE(LENGTH(result), 0) FROM tasks WHERE id = ?",
                           (task_id,)).fetchone()
        body = conn.execute("SELECT LENGTH(texts) + LENGTH(compile_source)"
                            " + LENGTH(execute_data) FROM task_bodies WHERE id = ?",
                            (task_id,)).fetchone()
    finally:
        conn.close()
    return int(row[0]), 0 if body is None else int(body[0])


def test_the_row_stays_small_and_the_task_reads_whole_through_its_life(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    store = SqliteStore(str(path))
    task = big_task()
    store.add(task)
    row, body = row_and_body(path, task.id)
    assert row < 4096 and body > len(BIG) + 200_000, (row, body)  # the texts are the body
    assert store.get(task.id) == task
    [taken] = store.assign("ex", 1, at(1), frozenset({"c"}))
    assert taken.execute == task.execute and taken.compile == task.compile
    assert store.progress(task.id, "ex", Status.RUNNING, at(2))
    assert store.finish(task.id, "ex", Status.SUCCESS, Result(execute_output=b"3\n"), at(3))
    got = store.get(task.id)
    assert got is not None and (got.execute, got.compile) == (task.execute, task.compile)
    assert row_and_body(path, task.id)[0] < 4096
    assert store.remove(task.id) and store.get(task.id) is None
    assert _gone(path, task.id)
    store.close()


def _gone(path: Path, task_id: str) -> bool:
    conn = sqlite3.connect(str(path))
    try:
        return all(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE id = ?",
                                (task_id,)).fetchone()[0] == 0
                   for table in ("tasks", "task_bodies"))
    finally:
        conn.close()


def test_a_taken_id_writes_no_body(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "k.db"))
    task = big_task()
    assert store.insert_new(task)
    other = big_task(5)
    other.id = task.id
    other.execute.cases[1].input = "6 6"
    assert not store.insert_new(other)
    assert store.get(task.id) == task
    store.close()


def test_a_task_stored_with_its_body_in_its_row_reads_and_changes_as_before(
        tmp_path: Path) -> None:
    """A store file written before task_bodies: the row holds the whole spec and the zips."""
    path = tmp_path / "k.db"
    store = SqliteStore(str(path))
    task = big_task()
    conn = sqlite3.connect(str(path))
    conn.execute(
        "INSERT INTO tasks (id, user, add_time, done, status, executor, report_time, needs,"
        " imaged, spec, compile_source, execute_data, result, priority)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (task.id, task.user, task.add_time, 0, 0, None, "", *task_needs(task),
         spec_to_json(task), task.compile.source, task.execute.data, result_to_json(None), 0))
    conn.commit()
    conn.close()
    assert store.get(task.id) == task
    [taken] = store.assign("ex", 1, at(1), frozenset({"c"}))
    assert taken.execute == task.execute
    assert store.finish(task.id, "ex", Status.SUCCESS, Result(), at(2))
    got = store.get(task.id)
    assert got is not None and got.execute == task.execute and got.done
    assert store.remove(task.id) and _gone(path, task.id)
    store.close()


def test_a_lean_get_skips_the_case_texts_and_standard_outputs_only(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "k.db"))
    task = big_task()
    seeded = Task(id=new_id(), user=4, add_time=at(1), compile=Compile(command="true"),
                  execute=Execute(command="cat", input="2 3\n" * 1000, standard="5\n"))
    for made in (task, seeded):
        store.add(made)
    store.assign("ex", 2, at(2), frozenset({"c"}))
    result = Result(compile_output=b"built", compile_error=b"[khala] warned",
                    execute_output=b"3\n" * 100_000, execute_error=b"oops")
    assert store.finish(task.id, "ex", Status.RUN_FAILED, result, at(3))
    lean = store.get(task.id, lean=True)
    assert lean is not None and lean.result is not None
    assert lean.execute.cases == [replace(c, input="", standard="") for c in task.execute.cases]
    assert (lean.compile.source, lean.execute.data) == (task.compile.source, task.execute.data)
    assert lean.result == replace(result, compile_output=b"", execute_output=b"")
    whole = store.get(task.id)
    assert whole is not None and whole.result == result
    assert replace(lean, execute=replace(lean.execute, cases=task.execute.cases),
                   result=result) == whole
    lean_seeded = store.get(seeded.id, lean=True)  # the task's own input and standard stay
    assert lean_seeded is not None and lean_seeded.execute == seeded.execute
    store.close()


def test_texts_and_outputs_pack_and_read_back_exactly() -> None:
    cases = [Case("", "x"), Case("ü\n\"\\\n", ""), Case("\0 nul \u2028", "\n" * 3)]
    task = Task(execute=Execute(input="", standard="", cases=cases))
    bare = Execute(cases=[replace(c, input="", standard="") for c in cases])
    assert with_texts(bare, *pack_texts(task)) == task.execute
    assert with_texts(bare, pack_texts(task)[0], None) == bare
    seeded = Task(execute=Execute(input="1 2\n", standard="3 ✓"))
    assert with_texts(Execute(), *pack_texts(seeded)) == seeded.execute
    with pytest.raises(ValueError, match="0 parts stored where 2 are read"):
        with_texts(Execute(cases=[Case()]), *pack_texts(seeded))
    result = Result(compile_output=b"\xff\x00", execute_output=b"\n" * 7, execute_error=b"e")
    packed = pack_outputs(result)
    assert packed is not None and with_outputs(Result(execute_error=b"e"), packed) == result
