"""Figures 6–7: search with many stored tasks (SQLite, MongoDB wire), the judicator's CPU per
report as simulated executors grow from 10 to 200, and dispatch with many pending tasks. The
stores are filled with bulk inserts before the judicator starts."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import (
    Ferret,
    Row,
    choose_handler,
    emit,
    median,
    ms,
    pct,
    process_cpu,
    test_cluster,
)
from khala.discovery.static import StaticDiscovery
from khala.model import Compile, Execute, Status, Task, format_time
from khala.rpc.client import JudicatorClient
from khala.store.codec import spec_to_json
from khala.store.sqlite import SqliteStore

BATCH = 20_000
START = dt.datetime(2026, 1, 1)
SMALL = 1_000  # the baseline store's size


def task_rows(count: int, done: bool) -> Iterator[tuple[Any, ...]]:
    spec = spec_to_json(Task(compile=Compile(command="true"), execute=Execute(command="true")))
    for i in range(count):
        when = format_time(START + dt.timedelta(milliseconds=i))
        yield (f"{i:024x}", i % 1000, when, int(done), int(Status.SUCCESS if done else 0),
               "bench-executor" if done else None, when if done else "", spec, b"", b"", None)


def fill_sqlite(path: str, count: int, done: bool = True) -> None:
    SqliteStore(path).close()  # the schema and its indexes
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    rows = task_rows(count, done)
    with conn:
        while chunk := [r for _, r in zip(range(BATCH), rows, strict=False)]:
            conn.executemany(
                "INSERT INTO tasks (id, user, add_time, done, status, executor, report_time,"
                " spec, compile_source, execute_data, result) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                chunk)
    conn.close()


def fill_mongo(url: str, database: str, count: int) -> None:
    from bson import ObjectId
    from pymongo import MongoClient

    from khala.store import open_store
    from khala.store.mongo.docs import task_to_doc as _task_to_doc

    open_store(url + database).close()  # the collections and their indexes
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    tasks = client[database]["tasks"]
    template = _task_to_doc(ObjectId(), Task(compile=Compile(command="true"),
                                             execute=Execute(command="true")))
    rows = task_rows(count, True)
    while chunk := [r for _, r in zip(range(BATCH), rows, strict=False)]:
        tasks.insert_many([{**template, "_id": ObjectId(r[0]), "user": r[1], "add_time": r[2],
                            "done": True, "status": r[4], "executor": r[5],
                            "report_time": r[6]} for r in chunk], ordered=False)
    client.close()


QUERIES = [
    {"limit": 20},
    {"limit": 20, "page": 40},
    {"user": 7, "limit": 20},
    {"start_time": "2026-01-01T00:05:00.000000", "end_time": "2026-01-01T00:06:00.000000",
     "limit": 20},
    {"user": 3, "old_to_new": 1, "limit": 20},
]


SEARCH_SECONDS = 90.0  # a figure's queries stop after this long (FerretDB scans: seconds each)
QUERY_TIMEOUT = 40.0  # one query; a query that fails or times out counts as this long


def search_times(url: str, runs: int, seconds: float = SEARCH_SECONDS) -> list[float]:
    """Seconds of up to `runs` searches (the QUERIES in turn), stopping after `seconds`."""
    session = requests.Session()
    values = []
    deadline = time.monotonic() + seconds
    for n in range(runs):
        if time.monotonic() >= deadline:
            break
        params = QUERIES[n % len(QUERIES)]
        started = time.perf_counter()
        try:
            answer = session.get(f"{url}/api/task/list", params=params,
                                 timeout=QUERY_TIMEOUT).json()
            ok = answer.get("result") == 0
        except requests.RequestException:
            ok = False
        values.append(time.perf_counter() - started if ok else QUERY_TIMEOUT)
    return values


def searched(tmp: Path, store: str, runs: int) -> list[float]:
    with test_cluster(tmp) as cluster:
        cluster.start_judicator(store=store)
        cluster.start_gateway()
        search_times(cluster.gateway_url, len(QUERIES), seconds=10)
        return search_times(cluster.gateway_url, runs)


def figure_search(args: object) -> None:
    quick = getattr(args, "quick", False)
    runs = 100 if quick else 200
    sizes = {"sqlite": 20_000 if quick else 1_000_000, "mongo": 5_000 if quick else 100_000}
    with tempfile.TemporaryDirectory(prefix="khala-bench-search-") as tmp:
        base = Path(tmp)
        results = {}
        for count in (SMALL, sizes["sqlite"]):
            path = str(base / f"s{count}.db")
            fill_sqlite(path, count)
            results[count] = searched(base / f"c{count}", f"sqlite:///{path}", runs)
        big = results[sizes["sqlite"]]
        emit(Row(f"search p99, SQLite, {sizes['sqlite']:,} tasks", ms(pct(big, 0.99)),
                 f"{SMALL:,} tasks {ms(pct(results[SMALL], 0.99))}",
                 pct(big, 0.99) / pct(results[SMALL], 0.99), "≤ 20 ms", pct(big, 0.99) <= 0.02))
        handler = choose_handler(getattr(args, "ferret_handler", "auto"))
        server = Ferret(handler)
        try:
            mongo = {}
            for count in (SMALL, sizes["mongo"]):
                fill_mongo(server.url, f"search{count}", count)
                mongo[count] = searched(base / f"m{count}", f"{server.url}search{count}", runs)
        finally:
            server.stop()
        big = mongo[sizes["mongo"]]
        emit(Row(f"search p99, MongoDB (FerretDB {handler}), {sizes['mongo']:,} tasks, "
                 f"{len(big)} queries in ≤ {SEARCH_SECONDS:g} s", ms(pct(big, 0.99)),
                 f"{SMALL:,} tasks {ms(pct(mongo[SMALL], 0.99))} ({len(mongo[SMALL])} queries)",
                 pct(big, 0.99) / pct(mongo[SMALL], 0.99), "≤ 20 ms", pct(big, 0.99) <= 0.02))


def report_cpu(address: str, pid: int, executors: int, seconds: float) -> tuple[float, int]:
    """CPU seconds of the judicator per report while `executors` simulated executors report
    (idle: nothing running, no vacancy, no long-poll) as fast as they can for `seconds`."""
    counts = [0] * executors
    deadline = time.monotonic() + seconds

    def executor(index: int) -> None:
        client = JudicatorClient(StaticDiscovery([address]), timeout=30)
        while time.monotonic() < deadline:
            client.report(f"bench-executor-{index}", [], [], 0, 0)
            counts[index] += 1
            time.sleep(0.05)  # a heartbeat-like pace; the total rate grows with the count
        client.close()

    threads = [threading.Thread(target=executor, args=(i,)) for i in range(executors)]
    cpu = process_cpu(pid)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (process_cpu(pid) - cpu) / max(1, sum(counts)), sum(counts)


def dispatch_times(address: str, runs: int) -> list[float]:
    """Seconds of one report that takes one pending task (vacant 1, no wait)."""
    client = JudicatorClient(StaticDiscovery([address]), timeout=30)
    values = []
    for _ in range(5):  # warm-up: the connection, the first queries
        client.report("bench-warmup", [], [], 1, 0)
    for _ in range(runs):
        started = time.perf_counter()
        got = client.report("bench-dispatch", [], [], 1, 0)
        values.append(time.perf_counter() - started)
        if not got.assign:
            raise RuntimeError("no task dispatched")
    client.close()
    return values


def figure_judicator(args: object) -> None:
    quick = getattr(args, "quick", False)
    seconds = 5.0 if quick else 15.0
    pending = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="khala-bench-jud-") as tmp:
        base = Path(tmp)
        with test_cluster(base / "r") as cluster:
            node = cluster.start_judicator()
            few, n_few = report_cpu(cluster.judicator_address, node.pid, 10, seconds)
            many, n_many = report_cpu(cluster.judicator_address, node.pid, 200, seconds)
        emit(Row("judicator CPU per report, 200 simulated executors", f"{ms(many)} ({n_many})",
                 f"10 executors {ms(few)} ({n_few})", many / few, "flat (≈ 1×)",
                 many / few <= 1.5))
        times = {}
        for count in (100, pending):
            path = str(base / f"p{count}.db")
            fill_sqlite(path, count, done=False)
            with test_cluster(base / f"d{count}") as cluster:
                cluster.start_judicator(store=f"sqlite:///{path}")
                times[count] = dispatch_times(cluster.judicator_address, 50)
        ratio = median(times[pending]) / median(times[100])
        emit(Row(f"dispatch (report taking 1 task), {pending:,} pending",
                 ms(median(times[pending])), f"100 pending {ms(median(times[100]))}", ratio,
                 "flat (≈ 1×)", ratio <= 1.5))
