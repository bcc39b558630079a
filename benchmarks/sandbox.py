"""Figures 3–4: the sandbox's cost per step over a bare fork/exec of /bin/true, and the
cluster's throughput under 32 concurrent clients against a raw loop of the same sandbox with
the same number of slots (no judicator, no gateway)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time

import requests

from benchmarks.common import (
    KhalaUp,
    Row,
    cpu_note,
    emit,
    median,
    ms,
    role_cpu,
    submit_and_wait,
    submit_and_wait_v2,
)
from khala.config import ExecutorSettings
from khala.executor.runner import run_task
from khala.images.tarball import unpack
from khala.model import Compile, Execute, Status, Task
from khala.sandbox import RunSpec, Sandbox, open_sandbox
from khala.sandbox.warm import WarmSandbox

SLOTS = 2
CLIENTS = 32


def bare_step() -> float:
    started = time.perf_counter()
    subprocess.run(["/bin/true"], check=True)
    return time.perf_counter() - started


def sandbox_steps(box: Sandbox, runs: int, ready: bool = False, root: str | None = None
                  ) -> tuple[list[float], list[float]]:
    """Seconds of `box.run` of /bin/true, `runs` times in one work area, each right after a
    bare fork/exec of /bin/true (the baseline, interleaved: both see the same load); `ready`:
    wait (not counted) until a warm pool has prepared its boxes again before each pair;
    `root`: in that image. Returns (sandboxed, bare)."""
    base = tempfile.mkdtemp(prefix="khala-bench-step-", dir="/tmp")
    os.chmod(base, 0o711)
    workdir = os.path.join(base, "khala-run-bench")
    os.mkdir(workdir)
    box.open_workdir(workdir, 64 * 1024 * 1024)
    box.prepare_workdir(workdir)
    values, bare = [], []
    try:
        for _ in range(runs):
            if ready and isinstance(box, WarmSandbox):
                box.settle(10)
            bare.append(bare_step())
            started = time.perf_counter()
            outcome = box.run(RunSpec(argv=["/bin/true"], workdir=workdir, root=root),
                              threading.Event())
            values.append(time.perf_counter() - started)
            if outcome.report.reason != "ok":
                raise RuntimeError(f"sandboxed /bin/true failed: {outcome}")
    finally:
        box.close_workdir(workdir)
        os.rmdir(workdir)
        os.rmdir(base)
    return values, bare


def busybox_image(directory: str) -> str:
    """An image of busybox-static alone (no Python, no C library), unpacked as an executor
    unpacks one (docs/images.md), under `directory`."""
    tree = os.path.join(directory, "tree")
    os.makedirs(os.path.join(tree, "bin"))
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", os.path.join(tree, "bin", "busybox"))
    for applet in ("sh", "true"):
        os.symlink("busybox", os.path.join(tree, "bin", applet))
    tar = os.path.join(directory, "busybox.tar")
    with tarfile.open(tar, "w") as out:
        out.add(tree, arcname=".")
    root = os.path.join(directory, "image")
    os.mkdir(root)
    unpack(tar, root, 1 << 30)
    return root


def figure_sandbox(args: object) -> None:
    runs = getattr(args, "runs", 500)
    results = {}
    images = tempfile.mkdtemp(prefix="khala-bench-image-", dir="/tmp")
    os.chmod(images, 0o711)
    image = busybox_image(images)
    kinds = ("warm, back to back", "warm, box ready", "cold", "warm, box ready, in an image",
             "cold, in an image")
    try:
        for kind in kinds:
            root = image if "image" in kind else None
            box = open_sandbox("bwrap", warm=ExecutorSettings().warm_sandboxes if "warm" in kind
                               else 0)
            try:
                sandbox_steps(box, 5, root=root)  # warm-up (opens an image's pool)
                results[kind] = sandbox_steps(box, runs, ready="ready" in kind, root=root)
            finally:
                box.close()
    finally:
        shutil.rmtree(images)
    for kind, (values, bare) in results.items():
        base = median(bare)
        cost = median(values) - base
        emit(Row(f"sandbox cost per step over bare fork/exec ({kind}), median of {runs}",
                 f"{ms(median(values))} (cost {ms(cost)})",
                 f"bare /bin/true {ms(base)} (interleaved)", median(values) / base,
                 "cost ≤ 1.0 ms", cost <= 0.001 if kind.startswith("warm") else None))


def trivial_task(n: int) -> Task:
    return Task(id=f"bench-{n}", compile=Compile(command="true", timeout=10),
                execute=Execute(command="true", timeout=10))


def raw_loop(seconds: float) -> float:
    """Tasks/s of run_task on SLOTS threads sharing one sandbox, for `seconds`."""
    settings = ExecutorSettings(work_dir=tempfile.mkdtemp(prefix="khala-bench-raw-", dir="/tmp"))
    os.chmod(settings.work_dir, 0o711)
    box = open_sandbox("bwrap", warm=settings.warm_sandboxes * SLOTS)
    done = [0] * SLOTS
    deadline = time.monotonic() + seconds

    def slot(index: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            status, result = run_task(trivial_task(n), box, settings, threading.Event())
            if status != Status.SUCCESS:
                raise RuntimeError(f"raw task failed: {status} {result}")
            n += 1
        done[index] = n

    threads = [threading.Thread(target=slot, args=(i,)) for i in range(SLOTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    box.close()
    os.rmdir(settings.work_dir)
    return sum(done) / elapsed


def cluster_loop(seconds: float, poll: bool = False, cpu: dict[str, float] | None = None
                 ) -> float:
    """Tasks/s finished for CLIENTS concurrent HTTP clients on `khala up`, for `seconds`. Each
    client submits with API v2 and waits with its long-poll `GET /api/v2/tasks/{id}?wait=`
    (the documented way to wait); `poll`: the seed API, a GET every 5 ms instead."""
    # Room in the gateway for every waiting client (docs/api-v2.md: each wait holds a thread;
    # max_waits of them per worker, docs/security.md); and in the judicator for that many
    # gateway threads connecting at once from one address (handshake_per_peer, 16 by default:
    # beyond it the oldest handshake is dropped and the client gets 503).
    up = KhalaUp(slots=SLOTS, env={"KHALA_THREADS": str(CLIENTS + 8),
                                   "KHALA_MAX_WAITS": str(CLIENTS),
                                   "KHALA_HANDSHAKE_PER_PEER": str(4 * CLIENTS)})
    done = [0] * CLIENTS
    wait = (lambda session: submit_and_wait(session, up.url, poll=0.005)) if poll else (
        lambda session: submit_and_wait_v2(session, up.url))
    try:
        wait(requests.Session())
        deadline = time.monotonic() + seconds

        def client(index: int) -> None:
            session = requests.Session()
            while time.monotonic() < deadline:
                wait(session)
                done[index] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        before = role_cpu(up.proc.pid)
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        after = role_cpu(up.proc.pid)
        if cpu is not None:  # CPU seconds per role, summed over the runs; "tasks": their count
            for role in before:
                cpu[role] = cpu.get(role, 0.0) + after[role] - before[role]
            cpu["tasks"] = cpu.get("tasks", 0.0) + sum(done)
    finally:
        up.stop()
    return sum(done) / elapsed


def figure_throughput(args: object) -> None:
    """Alternating rounds of the raw loop and the cluster (API v2 long-poll clients), the
    medians; then one round of the seed-API polling clients."""
    quick = getattr(args, "quick", False)
    seconds, count = (4.0, 1) if quick else (10.0, 3)
    raws, clusters = [], []
    cpu: dict[str, float] = {}
    for _ in range(count):
        raws.append(raw_loop(seconds))
        clusters.append(cluster_loop(seconds, cpu=cpu))
    tasks = int(cpu.pop("tasks", 1))
    raw, cluster = median(raws), median(clusters)
    baseline = f"raw run_task loop, {SLOTS} threads {raw:.1f} tasks/s"
    emit(Row(f"throughput, {CLIENTS} clients (API v2 long-poll), {SLOTS} slots, median of "
             f"{count} × {seconds:g} s", f"{cluster:.1f} tasks/s", baseline, cluster / raw,
             "≥ 0.8", cluster / raw >= 0.8,
             cpu_note(dict.fromkeys(cpu, 0.0), cpu, tasks, "task") + "; rounds: "
             + ", ".join(f"{c:.1f}/{r:.1f}" for c, r in zip(clusters, raws, strict=True))))
    if getattr(args, "all", False):
        polled = cluster_loop(seconds, poll=True)
        emit(Row(f"throughput, {CLIENTS} clients polling the seed API every 5 ms, {seconds:g} s",
                 f"{polled:.1f} tasks/s", baseline, polled / raw, "–", None))
