"""Figure 5: the gateway's GET /api/task?id= of a finished task against its trivial /api/test
route (plain Flask, the same gunicorn workers and threads), both on `khala up`'s gateway in the
same run, alternately, several rounds (the medians). Load: `wrk` (Debian) with 8 connections
when installed, else a bounded Python loop."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

import requests

from benchmarks.common import (
    TRIVIAL_FORM,
    KhalaUp,
    Row,
    emit,
    median,
    role_cpu,
    submit_and_wait,
    wait_for,
)

CONNECTIONS = 8


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


def measured(rate: Callable[[str, float], float], url: str, seconds: float, root: int
             ) -> tuple[float, float, float]:
    """(requests/s, gateway and judicator CPU seconds per request) of one load run."""
    before = role_cpu(root)
    per_second = rate(url, seconds)
    after = role_cpu(root)
    count = max(1.0, per_second * seconds)
    return (per_second, (after["gateway"] - before["gateway"]) / count,
            (after["judicator"] - before["judicator"]) / count)


def figure_gateway(args: object) -> None:
    """Alternating rounds; the medians. A keep-alive connection stays on the worker that took
    it, and wrk's connections often all land on one of the two workers: a round's rate swings
    with that split (either route alike), so the gateway's CPU per request is shown too."""
    quick = getattr(args, "quick", False)
    seconds, count = (2.0, 3) if quick else (4.0, 7)
    rate = wrk_rate if shutil.which("wrk") else python_rate
    tool = "wrk" if rate is wrk_rate else "python loop"
    up = KhalaUp(slots=2)
    trivial: list[tuple[float, float, float]] = []
    task: list[tuple[float, float, float]] = []
    try:
        session = requests.Session()
        submit_and_wait(session, up.url)
        task_id = session.post(f"{up.url}/api/task", data=TRIVIAL_FORM).json()["id"]
        wait_for(lambda: session.get(f"{up.url}/api/task", params={"id": task_id}, timeout=5)
                 .json()["task"]["done"], 30, "the task")
        for _ in range(count):
            trivial.append(measured(rate, f"{up.url}/api/test", seconds, up.proc.pid))
            task.append(measured(rate, f"{up.url}/api/task?id={task_id}", seconds, up.proc.pid))
    finally:
        up.stop()
    rate_task, rate_trivial = median([x[0] for x in task]), median([x[0] for x in trivial])
    gateway_task, gateway_trivial = median([x[1] for x in task]), median([x[1] for x in trivial])
    judicator_task = median([x[2] for x in task])
    ratio = rate_task / rate_trivial
    emit(Row(f"gateway GET /api/task?id= of a finished task ({tool}, {CONNECTIONS} connections, "
             f"median of {count} × {seconds:g} s)", f"{rate_task:.0f} req/s",
             f"GET /api/test {rate_trivial:.0f} req/s", ratio, "≥ 0.8", ratio >= 0.8,
             f"CPU per request: gateway {1e6 * gateway_task:.0f} µs against "
             f"{1e6 * gateway_trivial:.0f} µs (ratio {gateway_trivial / gateway_task:.2f}), "
             f"judicator {1e6 * judicator_task:.0f} µs; rounds, req/s: "
             + ", ".join(f"{a[0]:.0f}/{b[0]:.0f}" for a, b in zip(task, trivial, strict=True))))
