"""`khala up`: the one-command local cluster, as `make run` starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from khala.cli.up import free_port

pytestmark = pytest.mark.integration  # starts real processes


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def test_up_serves_runs_a_task_and_stops_every_child(tmp_path: Path) -> None:
    port = free_port()
    # --config FILE reaches every node `up` starts, as KHALA_CONFIG=FILE would: its [executor]
    # section limits the languages the executor offers
    config = tmp_path / "khala.toml"
    config.write_text('[up]\nslots = 2\n\n[executor]\nlanguages = "c"\n')
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "khala",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--executors",
            "1",
            "--config",
            str(config),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/api/test", timeout=1).text:
                    break
            except (requests.ConnectionError, requests.Timeout):  # workers still booting
                time.sleep(0.1)
        assert (
            requests.get(f"{base}/api/test", timeout=5).text == "Khala gateway server is working."
        )
        children = children_of(up.pid)
        assert len(children) >= 4  # etcd, judicator, executor, gateway
        judicators = requests.get(f"{base}/api/judicators", timeout=5).json()
        assert judicators["result"] == 0 and len(judicators["judicators"]) == 1
        form = {
            "user": 3,
            "compile_source_name": "",
            "compile_source_str": "",
            "compile_command": "true",
            "compile_timeout": 5,
            "execute_input": "21",
            "execute_data_name": "",
            "execute_data_str": "",
            "execute_command": "read x; echo $((x*2))",
            "execute_timeout": 5,
            "execute_standard": "42",
        }
        added = requests.post(f"{base}/api/task", data=form, timeout=10).json()
        assert added["result"] == 0
        deadline = time.monotonic() + 30
        task = {}
        while time.monotonic() < deadline:
            task = requests.get(f"{base}/api/task", params={"id": added["id"]}, timeout=5).json()
            if task["task"]["done"]:
                break
            time.sleep(0.05)
        assert task["task"]["status"] == 5, task
        assert task["task"]["result"]["execute_output"] == "42\n"
        deadline = time.monotonic() + 60
        names: list[str] = []
        while not names and time.monotonic() < deadline:
            listed = requests.get(f"{base}/api/v2/languages", timeout=5).json()["data"]
            names = [x["name"] for x in listed]
            time.sleep(0.1)
        assert names == ["c"], names
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        left = [
            pid
            for pid in children
            if os.path.exists(f"/proc/{pid}")
            and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        ]
        assert left == [], f"children still running after Ctrl-C: {left}"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        log.close()
        print((tmp_path / "up.log").read_text()[-2000:])


def descendants(pid: int) -> set[int]:
    """Every process under `pid` (children, their children, ...)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children_of(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_up(tmp_path: Path, data: Path, port: int, name: str) -> subprocess.Popen[bytes]:
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - the child holds it
    argv = [sys.executable, "-m", "khala", "up", "--port", str(port), "--data-dir", str(data),
            "--executors", "1", "--slots", "1"]
    try:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()


def serving(port: int, up: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert up.poll() is None, f"khala up exited with {up.returncode}"
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/test", timeout=1).ok:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    raise AssertionError(f"khala up not serving after {seconds}s")


def test_kill_9_of_up_leaves_no_process_and_one_cluster_holds_a_data_dir(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    up = start_up(tmp_path, data, port, "first")
    everything: set[int] = set()
    try:
        serving(port, up)
        # A private data dir: the store and its WAL are this user's alone.
        assert data.stat().st_mode & 0o777 == 0o700
        for name in ("khala.db", "khala.db-wal", "khala.lock"):
            assert (data / name).stat().st_mode & 0o777 == 0o600, name
        judicators = requests.get(f"http://127.0.0.1:{port}/api/judicators", timeout=5).json()
        assert [j["name"].endswith(f".{up.pid}") for j in judicators["judicators"]] == [True]
        # A second cluster on the same data dir is refused, and the first goes on.
        second = start_up(tmp_path, data, free_port(), "second")
        assert second.wait(60) == 1
        refusal = (tmp_path / "second.log").read_text()
        assert f"in use by a running cluster (khala up pid {up.pid}" in refusal, refusal
        assert requests.get(f"http://127.0.0.1:{port}/api/test", timeout=5).ok
        everything = descendants(up.pid)
        assert len(everything) >= 5  # etcd, judicator, executor, gateway and its worker
        up.kill()  # SIGKILL: no handler runs in khala up
        up.wait(10)
        deadline = time.monotonic() + 60  # the executor's stop grace and the gateway's, with room
        while any(alive(p) for p in everything) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in everything if alive(p)] == [], (tmp_path / "first.log").read_text()
        # Free again once the last node is gone: a new cluster starts on the same data dir.
        again = start_up(tmp_path, data, port, "again")
        try:
            serving(port, again)
            judicators = requests.get(f"http://127.0.0.1:{port}/api/judicators", timeout=5).json()
            assert [j["name"].endswith(f".{again.pid}") for j in judicators["judicators"]] == [True]
        finally:
            again.send_signal(signal.SIGINT)
            assert again.wait(60) == 0
    finally:
        for pid in [up.pid, *everything]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
