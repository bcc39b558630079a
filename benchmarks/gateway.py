"""Figure 5: the gateway's GET /api/task against its trivial /api/test route (plain Flask, the
same gunicorn workers and threads), both on `khala up`'s gateway in the same run. Load: `wrk`
(Debian) when installed, else a bounded Python loop."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time

import requests

from benchmarks.common import KhalaUp, Row, emit, submit_and_wait

CONNECTIONS = 16


def wrk_rate(url: str, seconds: float) -> float:
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", url],
                         capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"cannot read wrk's output: {out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed requests: {out}")
    return float(match.group(1))


def python_rate(url: str, seconds: float) -> float:
    counts = [0] * CONNECTIONS
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            session.get(url, timeout=10).raise_for_status()
            counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def figure_gateway(args: object) -> None:
    seconds = getattr(args, "seconds", 30.0) / 3
    rate = wrk_rate if shutil.which("wrk") else python_rate
    tool = "wrk" if rate is wrk_rate else "python loop"
    up = KhalaUp(slots=2)
    try:
        session = requests.Session()
        submit_and_wait(session, up.url)
        task_id = session.post(f"{up.url}/api/task", data={"user": 0, "compile_command": "true",
                                                           "execute_command": "true"}).json()["id"]
        trivial = rate(f"{up.url}/api/test", seconds)
        task = rate(f"{up.url}/api/task?id={task_id}", seconds)
    finally:
        up.stop()
    emit(Row(f"gateway GET /api/task ({tool}, {CONNECTIONS} connections, {seconds:g} s)",
             f"{task:.0f} req/s", f"GET /api/test {trivial:.0f} req/s", task / trivial, "≥ 0.5",
             task / trivial >= 0.5))
