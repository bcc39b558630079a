"""Latency of a trivial task (compile `true`, execute `true`) on an idle local cluster, and the
per-step cost of each sandbox, measured side by side in one run.

    make bench            # or: .venv/bin/python -m benchmarks.latency --tasks 30

Prints medians and ratios. Submission→done is taken from the judicator's own timestamps
(add_time → report_time of the result), and also as the client sees it (add → first `get`
that shows the task done, polling every 2 ms).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import threading
import time
import zlib
from pathlib import Path

from khala.errors import ConfigError, SandboxUnavailable
from khala.rpc import judicator_thrift as T
from khala.sandbox import RunSpec, open_sandbox
from tests.fixtures.cluster import Cluster


def trivial_task() -> object:
    z = zlib.compress(b"true")
    return T.Task(
        user=0,
        compile=T.Compile(source=b"", command=z, timeout=10),
        execute=T.Execute(input=b"", data=b"", command=z, timeout=10, standard=b""),
    )


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def cluster_latency(sandbox: str, tasks: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), sandbox=sandbox)
        try:
            cluster.start_judicator()
            cluster.start_executor(slots=2, heartbeat=1.0)
            rpc = cluster.rpc()
            time.sleep(1.0)  # let the executor settle into its idle long-poll
            server, client = [], []
            for _ in range(tasks):
                started = time.monotonic()
                task_id = rpc.add(trivial_task()).id
                while not (task := rpc.get(task_id).task).done:
                    time.sleep(0.002)
                client.append(time.monotonic() - started)
                assert task.status == 5, task
                server.append((parse(task.report_time) - parse(task.add_time)).total_seconds())
                time.sleep(0.05)  # idle again before the next submission
            return server, client
        finally:
            cluster.stop()


def step_cost(kind: str, runs: int) -> list[float]:
    sandbox = open_sandbox(kind)
    costs = []
    try:
        for _ in range(runs):
            with tempfile.TemporaryDirectory(dir="/tmp") as workdir:
                Path(workdir).chmod(0o711)
                sandbox.prepare_workdir(workdir)
                started = time.monotonic()
                outcome = sandbox.run(RunSpec(argv=["true"], workdir=workdir), threading.Event())
                costs.append(time.monotonic() - started)
                assert outcome.report.reason == "ok", outcome
    finally:
        sandbox.close()
    return costs


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    kinds = ["none"]
    try:
        open_sandbox("bwrap").close()
        kinds.append("bwrap")
    except (SandboxUnavailable, ConfigError) as exc:
        print(f"bwrap unavailable here ({exc}); measuring `none` only")
    steps = {kind: step_cost(kind, args.runs) for kind in kinds}
    print(f"one step running `true` (median of {args.runs}):")
    for kind, values in steps.items():
        print(f"  sandbox {kind:6s} {ms(values)}")
    if "bwrap" in steps:
        ratio = statistics.median(steps["bwrap"]) / statistics.median(steps["none"])
        print(f"  bwrap / none = {ratio:.2f}x")
    print(f"trivial task on an idle cluster, submission → done (median of {args.tasks}):")
    results = {kind: cluster_latency(kind, args.tasks) for kind in kinds}
    for kind, (server, client) in results.items():
        print(
            f"  sandbox {kind:6s} judicator clock {ms(server)}   client view {ms(client)}"
            f"   max {max(client) * 1000:.0f} ms"
        )
    if "bwrap" in results:
        ratio = statistics.median(results["bwrap"][1]) / statistics.median(results["none"][1])
        print(f"  bwrap / none = {ratio:.2f}x")


if __name__ == "__main__":
    main()
