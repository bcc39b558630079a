"""A single-member etcd on loopback for `khala up` and the test fixtures (the binary that
scripts/install-deps.sh builds into the virtualenv, else one on PATH)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from khala.errors import Unavailable

# The oldest etcd Khala runs without a warning: 3.5.3 fixed a data-inconsistency bug and later
# 3.5 releases fixed more; install-deps.sh builds a current 3.5 release.
MIN_VERSION = (3, 5, 17)


def find_binary(name: str) -> str | None:
    """A server binary next to this Python (where install-deps.sh builds it), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which(name)


def find_etcd() -> str | None:
    return find_binary("etcd")


def etcd_version(binary: str) -> tuple[int, ...] | None:
    """The version `etcd --version` prints, or None when it does not run."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"etcd Version: (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in found.groups()) if found else None


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return json.loads(response.read()).get("health") == "true"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def etcd_command(binary: str, data_dir: str, client_port: int, peer_port: int,
                 host: str = "127.0.0.1") -> list[str]:
    client = f"http://{host}:{client_port}"
    peer = f"http://{host}:{peer_port}"
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
