"""The SQLite store's `needs` and `imaged` columns: what an assignment matches against an
executor's offer, written at add from the task and, for a store file from before them, filled
from each stored spec; fair dispatch's queries test them from its indexes alone."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from khala.model import (
    Case,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    ImageRef,
    Interactor,
    ProblemRef,
    Task,
    new_id,
)
from khala.store.codec import result_to_json, spec_to_json
from khala.store.sqlite import SqliteStore
from khala.store.sqlite.bodies import WHOLE
from khala.store.sqlite.translate import IMAGED_FROM_SPEC, NEEDS_FROM_SPEC
from tests.store.test_contract import at

BIG = "7 " * 200_000  # a case text well past one page: its row spills into overflow pages


def tasks() -> list[Task]:
    """Tasks covering each place a language or an image is named, alone and together."""
    def task(seconds: int, **parts: object) -> Task:
        compile_part = parts.pop("compile", Compile(command="true"))
        execute_part = parts.pop("execute", Execute(command="true"))
        return Task(id=new_id(), user=1, add_time=at(seconds), compile=compile_part,
                    execute=execute_part)

    image = ImageRef(name="judge", version=1)
    return [
        task(0),
        task(1, compile=Compile(language="c")),
        task(2, compile=Compile(language="c"), execute=Execute(
            cases=[Case(BIG, BIG)],
            compare=Compare(mode=CompareMode.CHECKER, checker=Checker("python3", "x")))),
        task(3, compile=Compile(language="cpp"), execute=Execute(
            cases=[Case("1", "1")], interactor=Interactor(language="c", source="x"))),
        task(4, compile=Compile(language="c"), execute=Execute(problem=ProblemRef(
            id="p", judged=1, spec="a" * 64, checker="java", interactor="c"))),
        task(5, compile=Compile(command="true", image=image)),
        task(6, execute=Execute(command="true", image=image)),
        task(7, compile=Compile(language="go", image=image), execute=Execute(
            cases=[Case("1", "1")], image=image)),
    ]


def test_needs_written_at_add_equal_those_read_from_the_spec(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "k.db"))
    for task in tasks():
        store.add(task)
    store.close()
    conn = sqlite3.connect(str(tmp_path / "k.db"))
    rows = conn.execute(f"SELECT needs, imaged, {NEEDS_FROM_SPEC}, {IMAGED_FROM_SPEC}"
                        " FROM tasks ORDER BY add_time").fetchall()
    conn.close()
    assert [(json.loads(r[0]), r[1]) for r in rows] == [
        ([], 0), (["c"], 0), (["c", "python3"], 0), (["c", "cpp"], 0),
        (["c", "java"], 0), ([], 1), ([], 1), (["go"], 1)]
    assert [(json.loads(r[2]), r[3]) for r in rows] == [(json.loads(r[0]), r[1]) for r in rows]


def old_file(path: Path, made: list[Task]) -> None:
    """A store file as it was before the columns (and before task bodies and outputs had
    places of their own): the fair indexes without them, each task whole in its row."""
    SqliteStore(str(path)).close()
    conn = sqlite3.connect(str(path))
    conn.executescript("""
        DROP INDEX tasks_fair; DROP INDEX tasks_head; DROP TABLE task_bodies;
        ALTER TABLE tasks DROP COLUMN needs; ALTER TABLE tasks DROP COLUMN imaged;
        ALTER TABLE tasks DROP COLUMN outputs;
        CREATE INDEX tasks_fair ON tasks (done, executor, priority, user, add_time, id);
        CREATE INDEX tasks_head ON tasks (done, executor, priority, add_time, id, user, status);
    """)
    conn.executemany(
        "INSERT INTO tasks (id, user, add_time, done, status, executor, report_time, spec,"
        " compile_source, execute_data, result, priority) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [(t.id, t.user, t.add_time, int(t.done), int(t.status), t.executor, t.report_time,
          spec_to_json(t), t.compile.source, t.execute.data, result_to_json(t.result), 0)
         for t in made])
    conn.commit()
    conn.close()


def test_a_store_file_from_before_the_columns_gets_them_filled(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    made = tasks()
    old_file(path, made)
    store = SqliteStore(str(path))
    SqliteStore(str(path)).close()  # opened again: nothing to do twice
    conn = sqlite3.connect(str(path))
    for index in ("tasks_fair", "tasks_head"):
        columns = [r[2] for r in conn.execute(f"PRAGMA index_info({index})")]
        assert columns[-2:] == ["needs", "imaged"], (index, columns)
    conn.close()
    assert [store.get(t.id) for t in made] == made  # each still whole, from its row
    by_id = {t.id: i for i, t in enumerate(made)}
    taken = store.assign("c-host", 10, at(10), frozenset({"c", "cpp"}), images=False)
    assert sorted(by_id[t.id] for t in taken) == [0, 1, 3]
    taken = store.assign("imaged", 10, at(11), frozenset({"c", "go", "java", "python3"}))
    assert sorted(by_id[t.id] for t in taken) == [2, 4, 5, 6, 7]
    store.close()


def test_a_migration_that_fails_midway_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """The columns, their fill and the indexes are one transaction: a start that fails in the
    fill (here a spec SQLite cannot read) changes nothing, and the next start migrates."""
    path = tmp_path / "k.db"
    made = tasks()
    old_file(path, made)
    conn = sqlite3.connect(str(path))
    conn.execute("DROP INDEX tasks_problem")  # it reads the spec too: no such row in it
    conn.execute("UPDATE tasks SET spec = '{not json' WHERE id = ?", (made[1].id,))
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.OperationalError, match="malformed JSON"):
        SqliteStore(str(path))
    conn = sqlite3.connect(str(path))
    columns = {r[1] for r in conn.execute("PRAGMA table_info(tasks)")}
    assert "needs" not in columns and "imaged" not in columns
    fair = [r[2] for r in conn.execute("PRAGMA index_info(tasks_fair)")]
    assert fair == ["done", "executor", "priority", "user", "add_time", "id"]
    conn.execute("UPDATE tasks SET spec = ? WHERE id = ?", (spec_to_json(made[1]), made[1].id))
    conn.commit()
    conn.close()
    store = SqliteStore(str(path))
    taken = store.assign("c-only", 10, at(10), frozenset({"c"}), images=False)
    assert sorted(t.id for t in taken) == sorted([made[0].id, made[1].id])
    store.close()


def test_dispatch_reads_the_queue_from_its_indexes_alone(tmp_path: Path) -> None:
    """Every query of an assignment but the read of the tasks it takes is answered from a
    covering index: no queued task's row (its spec, its case texts) is read to choose."""
    path = tmp_path / "k.db"
    store = SqliteStore(str(path))
    for task in tasks():
        store.add(task)
    conn = store._connections.get()  # noqa: SLF001 - the statements this thread's store runs
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert store.assign("e", 2, at(10), frozenset({"c", "python3"}), images=False)
    finally:
        conn.set_trace_callback(None)
    chosen = [s for s in statements
              if s.lstrip().startswith("SELECT") and not s.startswith(f"SELECT {WHOLE}")]
    assert len(chosen) >= 3, statements
    for statement in chosen:
        plan = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + statement))
        scans = [step for step in plan.split(" | ") if step.startswith(("SCAN", "SEARCH"))
                 and " tasks " in f"{step} "]
        assert scans and all("COVERING INDEX" in step for step in scans), (statement, plan)
    store.close()
