"""The fleet figure: N simulated executors against real judicators — the real Thrift protocol
with node authentication on, each executor its own connection, behaving as an executor with one
slot does: a report that long-polls (`wait_ms` = the heartbeat, 1 s) while the slot is free, the
task it is given finished at once (sandboxes are not what is measured) and handed in on the next
report. A submitter adds trivial tasks in batches at 0.2 a second per executor, so that the load
per executor stays the same as N grows. For N = 10, 100 (and 1,000 without --quick), on SQLite
(one judicator) and on FerretDB (two judicators sharing it): judicator CPU per report (all
judicators' CPU ÷ all reports), the report call's p99, and dispatch p99 (submitted → in an
executor's hands). Flat in N is the goal.

Every executor holds a connection to one judicator (rendezvous order by its name), so a
judicator serving N executors needs `max_connections` ≥ its share of N plus the submitter's;
the judicators here are started with room for all of them, and for all of them in the
handshake at once from the one loopback address (docs/deployment.md)."""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import Ferret, Row, choose_handler, emit, ms, pct, process_cpu, test_cluster
from khala.discovery.static import StaticDiscovery
from khala.model import Compile, Execute, Result, Status, Task
from khala.rpc.auth import NodeAuth, write_secret_file
from khala.rpc.client import JudicatorClient

HEARTBEAT = 1.0  # an executor's default `heartbeat`: its long-poll's hold
TASKS_PER_EXECUTOR = 0.2  # trivial tasks submitted a second, per simulated executor
BATCHES = 10  # submissions a second (each a batch)
TRIVIAL = Task(compile=Compile(command="true"), execute=Execute(command="true"))


@dataclass
class Tally:
    """What the simulated fleet saw, shared by its threads (appends are atomic)."""

    submitted: dict[str, float] = field(default_factory=dict)
    reports: list[float] = field(default_factory=list)  # seconds per report call
    dispatch: list[float] = field(default_factory=list)  # submitted → assigned, seconds
    errors: list[str] = field(default_factory=list)


def executor_loop(name: str, addresses: list[str], auth: NodeAuth, tally: Tally,
                  stop: threading.Event, offset: float) -> None:
    client = JudicatorClient(StaticDiscovery(addresses), timeout=30, key=name, auth=auth,
                             name=name)
    held: list[Task] = []
    stop.wait(offset)  # spread the fleet's first reports over the heartbeat
    try:
        while not stop.is_set():
            done = [Task(id=t.id, done=True, status=Status.SUCCESS, executor=name,
                         result=Result()) for t in held]
            started = time.perf_counter()
            try:
                got = client.report(name, done, [], 1, int(HEARTBEAT * 1000))
            except Exception as exc:  # counted, not fatal: a refused connection is a finding
                tally.errors.append(f"{name}: {exc}")
                stop.wait(HEARTBEAT)
                continue
            now = time.perf_counter()
            tally.reports.append(now - started)
            held = list(got.assign)
            for task in held:
                if task.id in tally.submitted:
                    tally.dispatch.append(now - tally.submitted[task.id])
    finally:
        client.close()


def submitter(addresses: list[str], auth: NodeAuth, tally: Tally, stop: threading.Event,
              executors: int) -> None:
    client = JudicatorClient(StaticDiscovery(addresses), timeout=30, auth=auth, name="gateway")
    batch, owed = TASKS_PER_EXECUTOR * executors / BATCHES, 0.0
    try:
        while not stop.is_set():
            owed += batch
            count, owed = int(owed), owed - int(owed)
            if count:
                sent = time.perf_counter()
                for outcome in client.submit([TRIVIAL] * count):
                    if outcome.id:
                        tally.submitted[outcome.id] = sent
            stop.wait(1 / BATCHES)
    finally:
        client.close()


def play(addresses: list[str], pids: list[int], auth: NodeAuth, count: int, seconds: float
         ) -> dict[str, Any]:
    """Run `count` simulated executors for `seconds` after a warm-up; the figures."""
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=executor_loop, daemon=True,
                                args=(f"fleet-{count}-{i}", addresses, auth, tally, stop,
                                      HEARTBEAT * i / count)) for i in range(count)]
    threads.append(threading.Thread(target=submitter, daemon=True,
                                    args=(addresses, auth, tally, stop, count)))
    for t in threads:
        t.start()
    time.sleep(HEARTBEAT * 3)  # every executor connected and reporting
    first_report, first_dispatch = len(tally.reports), len(tally.dispatch)
    cpu = sum(process_cpu(p) for p in pids)
    time.sleep(seconds)
    cpu = sum(process_cpu(p) for p in pids) - cpu
    reports, dispatch = tally.reports[first_report:], tally.dispatch[first_dispatch:]
    stop.set()
    for t in threads:
        t.join(HEARTBEAT * 30)
    return {"cpu_per_report": cpu / max(1, len(reports)), "reports": len(reports),
            "report_p99": pct(reports, 0.99) if reports else float("nan"),
            "dispatch_p99": pct(dispatch, 0.99) if dispatch else float("nan"),
            "dispatched": len(dispatch), "errors": tally.errors[:3], "error_count":
            len(tally.errors)}


def fleet_on(store: str, counts: list[int], seconds: float, tmp: Path) -> dict[int, Any]:
    secret = str(tmp / "cluster.secret")
    write_secret_file(secret)
    auth = NodeAuth.from_file(secret)
    assert auth is not None
    room = 2 * max(counts) + 64
    ferret = Ferret(choose_handler("auto")) if store == "ferretdb" else None
    try:
        with test_cluster(tmp / store) as cluster:
            url = f"{ferret.url}fleet" if ferret else None
            # every simulated executor comes from the one loopback address, where real ones
            # come from their own: the per-address handshake cap is raised with the rest
            nodes = [cluster.start_judicator(store=url, cluster_secret_file=secret,
                                             max_connections=room, handshake_limit=room,
                                             handshake_per_peer=room)
                     for _ in range(2 if ferret else 1)]
            addresses = [f"127.0.0.1:{n.port}" for n in nodes]
            return {n: play(addresses, [x.pid for x in nodes], auth, n, seconds)
                    for n in counts}
    finally:
        if ferret:
            ferret.stop()


def figure_fleet(args: object) -> None:
    quick = getattr(args, "quick", False)
    counts = [10, 100] if quick else [10, 100, 1000]
    seconds = 8.0 if quick else 20.0
    for store in getattr(args, "fleet_stores", "sqlite,ferretdb").split(","):
        with tempfile.TemporaryDirectory(prefix="khala-bench-fleet-") as tmp:
            found = fleet_on(store, counts, seconds, Path(tmp))
        low, high = found[counts[0]], found[counts[-1]]
        for n, f in found.items():
            print(f"  {store}, {n} executors: {f['reports']} reports, CPU {ms(f['cpu_per_report'])}"
                  f" a report, report p99 {ms(f['report_p99'])}, dispatch p99 "
                  f"{ms(f['dispatch_p99'])} ({f['dispatched']} tasks), errors "
                  f"{f['error_count']} {f['errors']}", flush=True)
        judicators = "2 judicators on FerretDB" if store == "ferretdb" else "1 judicator, SQLite"
        ratio = high["cpu_per_report"] / low["cpu_per_report"]
        emit(Row(f"judicator CPU per report, {counts[-1]:,} simulated executors ({judicators})",
                 f"{ms(high['cpu_per_report'])} ({high['reports']} reports)",
                 f"{counts[0]} executors {ms(low['cpu_per_report'])}", ratio, "flat (≈ 1×)",
                 ratio <= 1.5 and not high["error_count"],
                 f"errors {high['error_count']}" if high["error_count"] else ""))
        ratio = high["dispatch_p99"] / low["dispatch_p99"]
        emit(Row(f"dispatch p99, {counts[-1]:,} simulated executors ({judicators})",
                 ms(high["dispatch_p99"]), f"{counts[0]} executors {ms(low['dispatch_p99'])}",
                 ratio, "flat (≈ 1×)", ratio <= 1.5,
                 f"report p99, long-poll holds of up to {HEARTBEAT:g} s included: "
                 f"{ms(high['report_p99'])} vs {ms(low['report_p99'])}"))
