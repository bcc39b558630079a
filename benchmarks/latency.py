"""Figures 1–2: a trivial task (compile `true`, execute `true`) POST → a GET showing it done,
over HTTP, on an idle cluster: `khala up` (SQLite), and two judicators on the MongoDB wire
test server (FerretDB) with the SQLite-store cluster measured in the same run as the baseline.
Both clusters of figure 2 use etcd for discovery, as a deployment of several judicators does
(docs/deployment.md): a judicator that queues work wakes the others' executors through it."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import requests

from benchmarks.common import (
    Ferret,
    KhalaUp,
    Row,
    bare_two_bash,
    choose_handler,
    emit,
    median,
    ms,
    pct,
    submit_and_wait,
    test_cluster,
    wait_for,
)

IDLE_GAP = 0.02  # seconds between two submissions, so each one meets an idle cluster


def latencies(url: str, count: int) -> list[float]:
    session = requests.Session()
    submit_and_wait(session, url)  # warm-up: first connections, first sandbox
    values = []
    for _ in range(count):
        values.append(submit_and_wait(session, url))
        time.sleep(IDLE_GAP)
    return values


def figure_http(args: object) -> list[float]:
    count = getattr(args, "tasks", 200)
    bare = [bare_two_bash() for _ in range(50)]
    up = KhalaUp(slots=2)
    try:
        values = latencies(up.url, count)
    finally:
        up.stop()
    p50, p99 = median(values), pct(values, 0.99)
    emit(Row(f"trivial task POST→done, khala up, p50 / p99 of {count}",
             f"{ms(p50)} / {ms(p99)}", f"bash -c true ×2 directly {ms(median(bare))}",
             p50 / median(bare), "≤ 15 ms / ≤ 50 ms", p50 <= 0.015 and p99 <= 0.050))
    return values


def figure_mongo(args: object) -> None:
    count = getattr(args, "tasks", 200) // 2
    handler = choose_handler(getattr(args, "ferret_handler", "auto"))
    with tempfile.TemporaryDirectory(prefix="khala-bench-") as tmp:
        sqlite = run_cluster(Path(tmp) / "sqlite", None, count)
        server = Ferret(handler)
        try:
            mongo = run_cluster(Path(tmp) / "mongo", f"{server.url}khala_bench", count)
        finally:
            server.stop()
    ratio = median(mongo) / median(sqlite)
    emit(Row(f"trivial task on MongoDB (FerretDB {handler}, 2 judicators), p50 / p99 of {count}",
             f"{ms(median(mongo))} / {ms(pct(mongo, 0.99))}",
             f"SQLite, 1 judicator {ms(median(sqlite))} / {ms(pct(sqlite, 0.99))}", ratio,
             "p50 ≤ 3× SQLite", ratio <= 3.0))


def run_cluster(tmp: Path, mongo_url: str | None, count: int) -> list[float]:
    with test_cluster(tmp, etcd=True) as cluster:
        for _ in range(2 if mongo_url else 1):
            cluster.start_judicator(store=mongo_url)
        cluster.start_executor(slots=2, heartbeat=1.0)
        cluster.start_gateway()
        url = cluster.gateway_url
        wait_for(lambda: requests.get(f"{url}/api/executors", timeout=2).json()["executors"],
                 60, "executor")
        return latencies(url, count)
