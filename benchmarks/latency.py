"""Figures 1–2: a trivial task (compile `true`, execute `true`) POST → seen done over HTTP (the
seed API polled, and API v2's long-poll) on an idle cluster: `khala up` (SQLite), and two
judicators on the MongoDB wire test server (FerretDB) with the SQLite-store cluster measured in
the same run as the baseline.
Both clusters of figure 2 use etcd for discovery, as a deployment of several judicators does
(docs/deployment.md): a judicator that queues work wakes the others' executors through it."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.common import (
    Ferret,
    KhalaUp,
    Row,
    choose_handler,
    cpu_note,
    emit,
    median,
    ms,
    pct,
    role_cpu,
    submit_and_wait,
    submit_and_wait_v2,
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


def bash_and_http(session: requests.Session, url: str) -> float:
    """The floor of a trivial task: a bare `bash -c true` and one HTTP round trip (GET
    /api/test on the same gateway, the same client)."""
    started = time.perf_counter()
    subprocess.run(["bash", "-c", "true"], check=True)
    session.get(f"{url}/api/test", timeout=30).raise_for_status()
    return time.perf_counter() - started


def figure_http(args: object) -> None:
    """One task at a time on an idle `khala up`, alternately waited for by polling the seed API
    every 1 ms and by API v2's long-poll, each next to its floor measured right before it."""
    count = getattr(args, "tasks", 200)
    up = KhalaUp(slots=2)
    polled, waited, floor = [], [], []
    try:
        session = requests.Session()
        submit_and_wait(session, up.url)  # warm-up: first connections, first sandbox
        submit_and_wait_v2(session, up.url)
        before = role_cpu(up.proc.pid)
        for _ in range(count):
            floor.append(bash_and_http(session, up.url))
            polled.append(submit_and_wait(session, up.url))
            time.sleep(IDLE_GAP)
            waited.append(submit_and_wait_v2(session, up.url))
            time.sleep(IDLE_GAP)
        cpu = cpu_note(before, role_cpu(up.proc.pid), 2 * count, "task (both kinds, idle gaps "
                       "included)")
    finally:
        up.stop()
    base = median(floor)
    for values, how in ((polled, "seed API polled every 1 ms"), (waited, "API v2 ?wait")):
        p50, p99 = median(values), pct(values, 0.99)
        emit(Row(f"trivial task POST→done, khala up, {how}, p50 / p99 of {count}",
                 f"{ms(p50)} / {ms(p99)}", f"bash -c true + 1 HTTP round trip {ms(base)}",
                 p50 / base, "≤ 10 ms / ≤ 25 ms", p50 <= 0.010 and p99 <= 0.025, cpu))


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
