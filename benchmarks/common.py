"""What the figures share: statistics, the printed table, clusters started like `khala up`,
FerretDB/PostgreSQL test servers and bulk-filled stores. Every loop here is bounded."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
TRIVIAL_FORM = {
    "user": 0, "compile_command": "true", "compile_timeout": 10, "execute_input": "",
    "execute_command": "true", "execute_timeout": 10, "execute_standard": "",
    "compile_source_name": "", "compile_source_str": "", "execute_data_name": "",
    "execute_data_str": "",
}


@dataclass
class Row:
    """One printed figure: the measured value, its baseline from the same run, the ratio."""

    name: str
    value: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None = None
    note: str = ""


ROWS: list[Row] = []


def emit(row: Row) -> None:
    ROWS.append(row)
    ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
    met = {True: "met", False: "MISSED", None: "-"}[row.met]
    print(f"  {row.name}: {row.value}  | baseline {row.baseline}  | ratio {ratio}"
          f"  | target {row.target}: {met}" + (f"  ({row.note})" if row.note else ""), flush=True)


def print_table() -> None:
    print("\n| figure | measured | baseline (same run) | ratio | target | |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in ROWS:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
        met = {True: "met", False: "missed", None: "–"}[r.met]
        print(f"| {r.name} | {r.value} | {r.baseline} | {ratio} | {r.target} | {met} |")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def median(values: list[float]) -> float:
    return statistics.median(values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, requests.RequestException, ValueError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {seconds:.0f} s")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(x) for x in task.read_text().split()]
        except OSError:
            pass
    return found


ROLES = ("judicator", "executor", "gateway", "etcd")


def role_cpu(root: int) -> dict[str, float]:
    """CPU seconds so far of each role of the process tree under `root` (`khala up`): its
    judicator, executor, gateway (master and workers) and etcd; `sandboxes`: the executor's
    children (boxes, steps), ended ones included (reaped: the executor's cutime + cstime)."""
    totals = dict.fromkeys((*ROLES, "sandboxes"), 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    todo = _children(root)
    while todo:
        pid = todo.pop()
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        words = {w.decode(errors="replace") for w in argv[:4]}
        role = next((r for r in ROLES if r in words or any(w.endswith("/" + r) for w in words)),
                    None)
        if role is None:
            continue
        totals[role] += (int(fields[11]) + int(fields[12])) / tick
        if role == "executor":
            totals["sandboxes"] += (int(fields[13]) + int(fields[14])) / tick
            totals["sandboxes"] += sum(tree_cpu(child) for child in _children(pid))
        else:
            todo += _children(pid)
    return totals


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its live descendants (and their reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(tree_cpu(child) for child in _children(pid))


def cpu_note(before: dict[str, float], after: dict[str, float], per: int, what: str) -> str:
    """"CPU per <what>: judicator 1.2 ms, …" from two role_cpu readings over `per` units."""
    parts = [f"{role} {1000 * (after[role] - before[role]) / per:.1f} ms"
             for role in before if after[role] - before[role] > 0]
    return f"CPU per {what}: " + ", ".join(parts)


def bare_two_bash() -> float:
    """Seconds to run `bash -c true` twice, directly (the issue's 3.5 ms baseline)."""
    started = time.perf_counter()
    for _ in range(2):
        subprocess.run(["bash", "-c", "true"], check=True)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- clusters


class KhalaUp:
    """`khala up` (etcd, one judicator on SQLite, one executor, the gateway) in a temp dir."""

    def __init__(self, slots: int = 2, sandbox: str = "bwrap", extra: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="khala-bench-up-", dir="/tmp")
        os.chmod(self.dir, 0o711)
        self.port = free_port()
        argv = [sys.executable, "-m", "khala", "up", "--port", str(self.port), "--data-dir",
                self.dir, "--slots", str(slots), "--sandbox", sandbox, "--log-level", "warning",
                *(extra or [])]
        self.log = open(os.path.join(self.dir, "up.log"), "ab")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, **(env or {})})
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        wait_for(lambda: self.session.get(f"{self.url}/api/executors", timeout=2)
                 .json().get("executors"), 60, "khala up")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def submit_and_wait(session: requests.Session, url: str, poll: float = 0.001,
                    timeout: float = 60.0) -> float:
    """POST a trivial task, GET until it shows done; the seconds that took."""
    started = time.perf_counter()
    answer = session.post(f"{url}/api/task", data=TRIVIAL_FORM, timeout=30).json()
    if answer.get("result") != 0:
        raise RuntimeError(f"submission refused: {answer}")
    task_id = answer["id"]
    deadline = started + timeout
    while time.perf_counter() < deadline:
        got = session.get(f"{url}/api/task", params={"id": task_id}, timeout=30).json()
        if got.get("result") == 0 and got["task"]["done"]:
            if got["task"]["status"] != 5:
                raise RuntimeError(f"trivial task failed: {got}")
            return time.perf_counter() - started
        time.sleep(poll)
    raise RuntimeError(f"task {task_id} not done after {timeout} s")


TRIVIAL_V2: dict[str, Any] = {"compile": {"command": "true", "timeout": 10},
                              "execute": {"command": "true", "timeout": 10}}


def submit_and_wait_v2(session: requests.Session, url: str, wait: float = 30.0,
                       timeout: float = 60.0) -> float:
    """POST a trivial task to API v2 and wait for it with the long-poll `GET
    /api/v2/tasks/{id}?wait=` (docs/api-v2.md: the documented way to wait, no polling loop);
    the seconds that took."""
    started = time.perf_counter()
    answer = session.post(f"{url}/api/v2/tasks", json=TRIVIAL_V2, timeout=30)
    if answer.status_code != 201:
        raise RuntimeError(f"submission refused: {answer.status_code} {answer.text[:200]}")
    task_id = answer.json()["data"]["id"]
    deadline = started + timeout
    while time.perf_counter() < deadline:  # a wait may end early (its cap): ask again
        left = min(wait, deadline - time.perf_counter())
        got = session.get(f"{url}/api/v2/tasks/{task_id}", params={"wait": f"{left:.3f}"},
                          timeout=left + 30)
        data = got.json().get("data") if got.status_code == 200 else None
        if data is None:
            raise RuntimeError(f"cannot read task {task_id}: {got.status_code} {got.text[:200]}")
        if data["done"]:
            if data["status"] != "success":
                raise RuntimeError(f"trivial task failed: {data}")
            return time.perf_counter() - started
    raise RuntimeError(f"task {task_id} not done after {timeout} s")


@contextmanager
def test_cluster(tmp: Path, sandbox: str = "bwrap", etcd: bool = False) -> Iterator[Any]:
    """The test fixtures' cluster builder (nodes started with the same commands as `khala up`).
    `etcd`: discovery through a one-member etcd of its own, as every deployment with several
    judicators has (they wake each other's executors through it); else static addresses."""
    from khala.cli.local_etcd import find_etcd
    from tests.fixtures.cluster import Cluster
    from tests.fixtures.servers import EtcdServer

    tmp.mkdir(parents=True, exist_ok=True)
    server = None
    if etcd:
        binary = find_etcd()
        if binary is None:
            raise RuntimeError("no etcd binary (scripts/install-deps.sh builds .venv/bin/etcd)")
        (tmp / "etcd").mkdir()
        server = EtcdServer(binary, tmp / "etcd")
        server.start()
    cluster = Cluster(tmp, sandbox=sandbox, etcd_url=server.url if server else "")
    try:
        yield cluster
    finally:
        cluster.stop()
        if server is not None:
            server.stop()


# ----------------------------------------------------------------------------- MongoDB wire


def ferretdb_binary() -> str:
    from khala.cli.local_etcd import find_binary

    binary = find_binary("ferretdb")
    if binary is None:
        raise RuntimeError("no ferretdb binary (bash scripts/install-deps.sh test builds it)")
    return binary


def postgres_bin() -> str | None:
    """Debian's PostgreSQL server binaries directory, if installed."""
    base = Path("/usr/lib/postgresql")
    versions = sorted(base.glob("*/bin/postgres")) if base.is_dir() else []
    return str(versions[-1].parent) if versions else None


class Postgres:
    """A throw-away PostgreSQL server on loopback, run as the unprivileged `nobody`-like user
    `postgres` (initdb refuses root)."""

    def __init__(self, bindir: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="khala-bench-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        data = os.path.join(self.dir, "data")
        self.port = free_port()
        user = "postgres"
        shutil.chown(self.dir, user)
        run_as = ["runuser", "-u", user, "--"]
        subprocess.run([*run_as, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "khala"],
                       check=True, capture_output=True)
        self.log = open(os.path.join(self.dir, "pg.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*run_as, f"{bindir}/postgres", "-D", data, "-k", self.dir, "-p", str(self.port),
             "-h", "127.0.0.1", "-c", "fsync=off"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: socket.create_connection(("127.0.0.1", self.port), 0.5).close() is None,
                 30, "postgres")
        createdb = [*run_as, f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(self.port),
                    "-U", "khala", "ferretdb"]
        # The port answers before the server accepts sessions ("starting up"): retry, bounded.
        wait_for(lambda: subprocess.run(createdb, capture_output=True).returncode == 0, 30,
                 "postgres createdb")
        self.url = f"postgres://khala@127.0.0.1:{self.port}/ferretdb"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Ferret:
    """FerretDB v1 on loopback with the `sqlite` or `postgresql` handler."""

    def __init__(self, handler: str) -> None:
        self.handler = handler
        self.dir = tempfile.mkdtemp(prefix="khala-bench-ferret-", dir="/tmp")
        self.pg = Postgres(postgres_bin() or "") if handler == "postgresql" else None
        self.port = free_port()
        backend = ([f"--postgresql-url={self.pg.url}"] if self.pg
                   else [f"--sqlite-url=file:{self.dir}/"])
        argv = [ferretdb_binary(), f"--handler={handler}", *backend,
                f"--listen-addr=127.0.0.1:{self.port}", "--telemetry=disable",
                "--debug-addr=-", f"--state-dir={self.dir}", "--log-level=warn"]
        self.log = open(os.path.join(self.dir, "ferret.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "DO_NOT_TRACK": "1"},
                                     start_new_session=True)
        wait_for(lambda: socket.create_connection(("127.0.0.1", self.port), 0.5).close() is None,
                 30, "ferretdb")
        self.url = f"mongodb://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.pg:
            self.pg.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def choose_handler(wanted: str) -> str:
    """`auto`: postgresql when Debian's PostgreSQL is installed (it uses indexes), else sqlite."""
    if wanted != "auto":
        return wanted
    return "postgresql" if postgres_bin() else "sqlite"
