"""A day of a real judge, on paper: what one 50-case submission costs, measured, then scaled to
100,000 submissions. A cluster of real nodes (a judicator on SQLite, an executor with 2 slots, a
gateway) with a byte-counting relay in front of the judicator on each side (gateway →
judicator, executor → judicator); C++ A+B submissions, each source different (a comment), so
every one compiles as on a real day; 50 cases of ~20 kB input each, once as a stored problem,
once inline. Per submission: CPU of each role (the sandboxes: compiler and program runs), bytes
on each link (the executor's idle heartbeats, measured before, taken off), and the store's
bytes for the task's row. The projection multiplies by 100,000; the programs here take no time,
so a real day adds its solutions' own CPU (printed as a formula)."""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import process_cpu, test_cluster, tree_cpu, wait_for
from benchmarks.judge import upload, wait_judged
from tests.problems.packages import AB_TOML, zipped
from tests.problems.relay import CountingRelay

CASES = 50
INPUT_BYTES = 20_000
DAY = 100_000
SOURCE = ("#include <cstdio>\n// submission {n}\nint main(){{long long a,b;"
          "if(scanf(\"%lld %lld\",&a,&b)!=2)return 1;printf(\"%lld\\n\",a+b);}}\n")


def cases() -> list[dict[str, str]]:
    """A line the solution never reads pads each input: random numbers, which compress about
    as test data does (the RPC compresses large texts), the same in every run."""
    rng = random.Random(7)
    out = []
    for i in range(CASES):
        pad = " ".join(str(rng.randrange(10**9)) for _ in range(INPUT_BYTES // 10))
        out.append({"input": f"{i} {i * 3}\n{pad[:INPUT_BYTES - 40]}\n", "standard": f"{i * 4}\n"})
    return out


def body(n: int, stored: bool) -> dict[str, Any]:
    execute: dict[str, Any] = ({"problem": {"id": "day-ab"}} if stored
                               else {"timeout": 10, "cases": cases()})
    return {"compile": {"language": "cpp", "files": [{"path": "main.cpp",
                                                      "content": SOURCE.format(n=n)}]},
            "execute": execute}


def cpu(cluster: Any) -> dict[str, float]:
    """CPU seconds so far per role; the sandboxes are the executor's children, ended ones
    included."""
    out = {"judicator": 0.0, "executor": 0.0, "gateway": 0.0, "sandboxes": 0.0}
    for node in cluster.nodes:
        out[node.role] += process_cpu(node.pid) if node.role != "gateway" else tree_cpu(node.pid)
        if node.role == "executor":
            out["sandboxes"] += tree_cpu(node.pid) - process_cpu(node.pid)
    return out


def run(tmp: Path, stored: bool, count: int) -> dict[str, float]:
    with test_cluster(tmp) as cluster:
        judicator = cluster.start_judicator()
        target = ("127.0.0.1", judicator.port)
        from_executor, from_gateway = CountingRelay(target), CountingRelay(target)
        try:
            cluster.start_executor(slots=2, judicators=f"127.0.0.1:{from_executor.port}")
            cluster.start_gateway(judicators=f"127.0.0.1:{from_gateway.port}")
            url, session = cluster.gateway_url, requests.Session()
            wait_for(lambda: "cpp" in {x["name"] for x in session.get(
                f"{url}/api/v2/languages", timeout=5).json()["data"]}, 60, "the cpp preset")
            files = {"problem.toml": AB_TOML.encode()}
            for i, case in enumerate(cases(), 1):
                files[f"tests/{i:02d}.in"] = case["input"].encode()
                files[f"tests/{i:02d}.ans"] = case["standard"].encode()
            if stored:
                upload(session, url, "day-ab", zipped(files))
                wait_judged(session, url, post(session, url, body(-1, True))[0])  # fetched once
            from_executor.reset()
            time.sleep(3)
            idle_rate = sum(from_executor.counts()) / 3
            from_executor.reset()
            from_gateway.reset()
            before, started = cpu(cluster), time.monotonic()
            sent, ids = 0, []
            for n in range(count):
                task_id, size = post(session, url, body(n, stored))
                ids.append(task_id)
                sent += size
            for task_id in ids:
                wait_judged(session, url, task_id)
            took = time.monotonic() - started
            after = cpu(cluster)
            figures = {f"cpu_{k}": (after[k] - before[k]) / count for k in after}
            figures["client_bytes"] = sent / count
            figures["gateway_link"] = sum(from_gateway.counts()) / count
            figures["executor_link"] = max(
                0.0, sum(from_executor.counts()) - idle_rate * took) / count
            figures["store_bytes"] = row_bytes(tmp / "khala.db", ids)
            return figures
        finally:
            from_executor.close()
            from_gateway.close()


def post(session: requests.Session, url: str, payload: dict[str, Any]) -> tuple[str, int]:
    data = json.dumps(payload).encode()
    reply = session.post(f"{url}/api/v2/tasks", data=data,
                         headers={"Content-Type": "application/json"}, timeout=60)
    if reply.status_code != 201:
        raise RuntimeError(f"submission refused: {reply.status_code} {reply.text[:300]}")
    return str(reply.json()["data"]["id"]), len(data)


def row_bytes(db: Path, ids: list[str]) -> float:
    """Mean bytes of the tasks' rows and bodies (their spec, texts, sources, data and
    result)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(ids))
        total = conn.execute(
            "SELECT SUM(LENGTH(t.spec) + LENGTH(t.compile_source) + LENGTH(t.execute_data)"
            " + COALESCE(LENGTH(t.result), 0) + COALESCE(LENGTH(b.texts)"
            " + LENGTH(b.compile_source) + LENGTH(b.execute_data), 0))"
            " FROM tasks AS t LEFT JOIN task_bodies AS b ON b.id = t.id"
            f" WHERE t.id IN ({marks})", ids).fetchone()[0]
    finally:
        conn.close()
    return float(total) / len(ids)


def kib(value: float) -> str:
    return f"{value / 1024:,.1f} KiB"


def figure_day(args: object) -> None:
    count = 6 if getattr(args, "quick", False) else 20
    found = {}
    for stored in (True, False):
        with tempfile.TemporaryDirectory(prefix="khala-bench-day-") as tmp:
            found["stored" if stored else "inline"] = run(Path(tmp), stored, count)
    print(f"\n  per submission ({CASES} cases of {INPUT_BYTES // 1000} kB input, C++ compiled "
          f"each time): the mean of {count}")
    print("  | | stored problem | inline cases |\n  | --- | --- | --- |")
    for key, label in (("cpu_gateway", "gateway CPU"), ("cpu_judicator", "judicator CPU"),
                       ("cpu_executor", "executor CPU"),
                       ("cpu_sandboxes", "sandboxes CPU (compile + 50 runs)")):
        print(f"  | {label} | {found['stored'][key] * 1000:.0f} ms | "
              f"{found['inline'][key] * 1000:.0f} ms |")
    for key, label in (("client_bytes", "client → gateway (the HTTP body)"),
                       ("gateway_link", "gateway ↔ judicator"),
                       ("executor_link", "executor ↔ judicator"),
                       ("store_bytes", "the task's row in the store")):
        print(f"  | {label} | {kib(found['stored'][key])} | {kib(found['inline'][key])} |")
    print(f"\n  a day of {DAY:,} submissions")
    print("  | | stored problem | inline cases |\n  | --- | --- | --- |")
    for key, label in (("cpu_judicator", "judicator CPU-hours"),
                       ("cpu_gateway", "gateway CPU-hours")):
        print(f"  | {label} | {found['stored'][key] * DAY / 3600:.1f} | "
              f"{found['inline'][key] * DAY / 3600:.1f} |")
    row = {k: (found[k]["cpu_executor"] + found[k]["cpu_sandboxes"]) * DAY / 3600
           for k in found}
    print(f"  | executor CPU-hours, programs' own time aside | {row['stored']:.1f} | "
          f"{row['inline']:.1f} |")
    for key, label in (("store_bytes", "store growth"),
                       ("executor_link", "executor ↔ judicator traffic"),
                       ("gateway_link", "gateway ↔ judicator traffic")):
        print(f"  | {label} | {found['stored'][key] * DAY / 1e9:.2f} GB | "
              f"{found['inline'][key] * DAY / 1e9:.2f} GB |")
