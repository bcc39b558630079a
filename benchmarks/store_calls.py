"""The store calls a judicator makes for one trivial task, submit → done, on SQLite or FerretDB.

    .venv/bin/python -m benchmarks.store_calls [--store sqlite|mongo] [--tasks 10]

Runs a judicator in this process (static discovery) with a counting wrapper around its store's
and its operations store's classes (here, not in product code), an executor as a process, and
submits trivial tasks one at a time through `add`, waiting for each with the v2 `find(wait)`
(whose own reads are left out of the list). On the MongoDB path it also counts the wire
commands (pymongo's command monitoring): FerretDB's claim documents show up there. Prints the
calls of the last task in order, with the thread that made them, and the mean per task.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Ferret, choose_handler, free_port
from benchmarks.sandbox import trivial_task

CLIENT_READS = {"get", "resolve", "ops.webhook"}  # the script's own find(wait): not the task's path

calls: list[tuple[float, str, str]] = []
_lock = threading.Lock()
_local = threading.local()  # .client: inside one of the script's own reads


def _count(cls: type, label: str) -> None:
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not callable(member):
            continue

        def wrapper(*args: Any, _m: Any = member, _n: str = f"{label}{name}", **kw: Any) -> Any:
            with _lock:
                calls.append((time.monotonic(), _n, threading.current_thread().name))
            _local.client = _n in CLIENT_READS
            try:
                return _m(*args, **kw)
            finally:
                _local.client = False

        setattr(cls, name, functools.wraps(member)(wrapper))


def _count_commands() -> None:
    from pymongo import monitoring

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name in {"hello", "isMaster", "ismaster", "ping", "endSessions"}:
                return
            if getattr(_local, "client", False):
                return  # the script's own read
            coll = event.command.get(event.command_name)
            with _lock:
                calls.append((time.monotonic(), f"  wire {event.command_name} {coll}",
                              threading.current_thread().name))

        def succeeded(self, event: Any) -> None:
            return None

        def failed(self, event: Any) -> None:
            return None

    monitoring.register(Listener())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["sqlite", "mongo"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--ferret-handler", default="auto")
    args = parser.parse_args()
    from khala.config import JudicatorSettings
    from khala.judicator.server import JudicatorServer
    from khala.store import mongodb, ops, sqlite

    for cls in (sqlite.SqliteStore, mongodb.MongoStore):
        _count(cls, "")
    for cls in (ops.SqliteOpsStore, ops.MongoOpsStore):
        _count(cls, "ops.")
    tmp = Path(tempfile.mkdtemp(prefix="khala-bench-calls-", dir="/tmp"))
    os.chmod(tmp, 0o711)
    ferret = None
    if args.store == "mongo":
        _count_commands()
        ferret = Ferret(choose_handler(args.ferret_handler))
        url = f"{ferret.url}khala_calls"
    else:
        url = f"sqlite:///{tmp}/khala.db"
    port = free_port()
    settings = JudicatorSettings(listen=f"127.0.0.1:{port}", store=url, name="j",
                                 expiry=30, max_wait_ms=5000)
    server = JudicatorServer(settings)
    server.start()
    executor = subprocess.Popen(
        [sys.executable, "-m", "khala", "executor", "--judicators", f"127.0.0.1:{port}",
         "--slots", "2", "--heartbeat", "5", "--work-dir", str(tmp / "work"),
         "--name", "calls", "--log-level", "warning"], start_new_session=True)
    try:
        run(server, args.tasks)
    finally:
        executor.terminate()
        executor.wait(30)
        server.stop()
        if ferret is not None:
            ferret.stop()


def run(server: Any, count: int) -> None:
    from khala.discovery.static import StaticDiscovery
    from khala.rpc.client import JudicatorClient

    client = JudicatorClient(StaticDiscovery([f"127.0.0.1:{server.port}"]), 10.0)
    deadline = time.monotonic() + 60
    while not server.store.executors("") and time.monotonic() < deadline:
        time.sleep(0.1)
    client.find(client.add(trivial_task(0)), 30.0)  # warm-up
    per_task: list[list[tuple[float, str, str]]] = []
    for n in range(count):
        time.sleep(0.3)  # the executor back in its long-poll
        start = len(calls)
        task_id = client.add(trivial_task(n))
        task = client.find(task_id, 30.0)
        assert task.done, task
        time.sleep(0.05)  # the report that handed the result in has returned
        per_task.append([c for c in calls[start:] if c[1] not in CLIENT_READS])
    last = per_task[-1]
    t0 = last[0][0]
    print(f"store calls of the last task ({len(last)} incl. wire commands), in order:")
    for at, name, thread in last:
        print(f"  {1000 * (at - t0):7.1f} ms  {name:40s} {thread}")
    totals: collections.Counter[str] = collections.Counter()
    for group in per_task:
        totals.update(name for _, name, _ in group)
    methods = sum(v for k, v in totals.items() if not k.startswith("  wire"))
    wire = sum(v for k, v in totals.items() if k.startswith("  wire"))
    print(f"per task over {count}: {methods / count:.1f} store calls, {wire / count:.1f} wire "
          "commands")
    for name, value in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {value / count:5.2f}  {name}")


if __name__ == "__main__":
    main()
