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
