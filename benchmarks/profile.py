"""Where the time of a trivial task goes on an idle `khala up`, step by step, plus a py-spy CPU
profile of each node while it runs.

    .venv/bin/python -m benchmarks.profile [--tasks 100] [--cold] [--spy]

The timeline of each task comes from the client's clock and the task's own record: the POST,
the judicator's add_time → report_time, the two steps' wall times (the sandbox), and the rest
(dispatch, work dir, result hand-in; then the client seeing it). `--spy` also samples the
judicator, the executor and the gateway workers with py-spy (the `bench` extra) and prints each
one's hottest frames (inclusive share of its samples taken while holding the GIL: Python CPU).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.common import TRIVIAL_FORM, KhalaUp, median

ROLES = {"judicator": " judicator ", "executor": " executor ", "gateway": " gateway "}


def node_pids(root: int) -> dict[str, list[int]]:
    """The Khala node processes under `root` (khala up), by role."""
    found: dict[str, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) != root and not _descends(int(stat[1]), root):
            continue
        for role, needle in ROLES.items():
            if needle in f" {cmdline} " and "khala" in cmdline:
                found[role].append(int(entry))
    return found


def _descends(pid: int, root: int) -> bool:
    for _ in range(8):
        if pid == root:
            return True
        if pid <= 1:
            return False
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


def one_task(session: requests.Session, url: str) -> dict[str, float]:
    started = time.perf_counter()
    answer = session.post(f"{url}/api/task", data=TRIVIAL_FORM, timeout=30).json()
    posted = time.perf_counter()
    task_id = answer["id"]
    for _ in range(20000):
        task = session.get(f"{url}/api/task", params={"id": task_id}, timeout=30).json()["task"]
        if task["done"]:
            break
        time.sleep(0.001)
    seen = time.perf_counter()
    server = (dt.datetime.fromisoformat(task["report_time"])
              - dt.datetime.fromisoformat(task["add_time"])).total_seconds()
    steps = [task["result"][s]["wall_time"] for s in ("compile", "execute")]
    return {"total": seen - started, "post": posted - started, "server": server,
            "compile": steps[0], "execute": steps[1],
            "rest": server - sum(steps), "seen": seen - started - (posted - started) - server}


def spy(pids: dict[str, list[int]], seconds: int, out: str) -> list[subprocess.Popen[bytes]]:
    binary = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    procs = []
    for role, group in pids.items():
        for pid in group:
            procs.append(subprocess.Popen(
                [binary, "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "--gil",
                 "-f", "raw", "-o", os.path.join(out, f"{role}-{pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def hottest(path: str, top: int = 12) -> list[tuple[float, str]]:
    """Inclusive share of samples per Khala (or flask/thriftpy2/sqlite/pymongo) frame."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (")[0]
            where = frame.split(" (")[-1]
            key = f"{name} {where.split(':')[0]}"
            if key in seen:
                continue
            seen.add(key)
            if any(k in where for k in ("khala/", "thriftpy2", "flask", "werkzeug", "sqlite",
                                          "pymongo", "gunicorn")):
                module = where.split("/")[-1].rstrip(")").split(":")[0]
                counts[f"{name} ({module})"] += int(n)
    return [(c / max(1, total), f) for f, c in counts.most_common(top)]


def read_trace(directory: str, since: float) -> list[tuple[float, float, str, str]]:
    events = []
    for name in os.listdir(directory):
        role = name.split("-")[0]
        for line in Path(directory, name).read_text().splitlines():
            start, end, what, thread = line.split(" ", 3)
            if float(start) >= since:
                events.append((float(start), float(end), what, f"{role}:{thread}"))
    return sorted(events)


def print_trace(directory: str, since: float) -> None:
    """Each traced call's start (after the judicator's `add` began) and duration, medians over
    the tasks; the k-th call of a name within one task is `name#k`."""
    events = read_trace(directory, since)
    adds = [e[0] for e in events if e[2] == "JudicatorService.add"]
    starts: dict[str, list[float]] = collections.defaultdict(list)
    lengths: dict[str, list[float]] = collections.defaultdict(list)
    for index, begin in enumerate(adds):
        end = adds[index + 1] if index + 1 < len(adds) else float("inf")
        seen: collections.Counter[str] = collections.Counter()
        for start, stop, what, thread in events:
            if begin <= start < end:
                seen[what] += 1
                key = f"{what}#{seen[what]} [{thread.split(':')[0]}]"
                starts[key].append(start - begin)
                lengths[key].append(stop - start)
    print(f"\ntraced calls, medians over {len(adds)} tasks (start after add began, duration):")
    order = sorted(starts, key=lambda k: median(starts[k]))
    for key in order:
        if len(starts[key]) < len(adds) // 2:
            continue  # a call most tasks did not make
        print(f"  {median(starts[key]) * 1000:7.2f} ms  +{median(lengths[key]) * 1000:6.2f} ms"
              f"  {key}  (in {len(starts[key])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--cold", action="store_true", help="warm_sandboxes = 0")
    parser.add_argument("--spy", action="store_true", help="also sample each node with py-spy")
    parser.add_argument("--trace", action="store_true",
                        help="also time the executor's and judicator's hot-path functions")
    args = parser.parse_args()
    env_before = os.environ.get("KHALA_WARM_SANDBOXES")
    if args.cold:
        os.environ["KHALA_WARM_SANDBOXES"] = "0"
    out = tempfile.mkdtemp(prefix="khala-profile-")
    traces = tempfile.mkdtemp(prefix="khala-trace-")
    env = {"PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent / "tracehook"), os.environ.get("PYTHONPATH", "")]),
        "KHALA_TRACE_DIR": traces} if args.trace else None
    up = KhalaUp(slots=2, env=env)
    try:
        session = requests.Session()
        for _ in range(5):
            one_task(session, up.url)
        spies = spy(node_pids(up.proc.pid), max(5, args.tasks // 10), out) if args.spy else []
        since = time.time()  # the warm-up tasks' trace lines are not counted
        rows = [one_task(session, up.url) for _ in range(args.tasks)]
        for proc in spies:
            proc.wait(120)
    finally:
        up.stop()
        if env_before is None:
            os.environ.pop("KHALA_WARM_SANDBOXES", None)
    print(f"trivial task on khala up ({'cold' if args.cold else 'warm'} sandboxes), "
          f"medians of {args.tasks}:")
    labels = {"post": "POST /api/task answered (gateway → judicator add)",
              "server": "judicator add_time → report_time (dispatch, run, hand-in)",
              "compile": "  compile step (sandbox wall time)",
              "execute": "  execute step (sandbox wall time)",
              "rest": "  the rest: dispatch, work dir, layout, result hand-in",
              "seen": "done → a GET shows it (polling every 1 ms)",
              "total": "total, POST → done seen"}
    for key, label in labels.items():
        print(f"  {label:62s} {median([r[key] for r in rows]) * 1000:7.1f} ms")
    if args.trace:
        print_trace(traces, since)
        print(f"(trace files kept in {traces})")
    else:
        shutil.rmtree(traces, ignore_errors=True)
    for name in sorted(os.listdir(out)):
        print(f"\npy-spy {name.removesuffix('.txt')}: hottest frames (inclusive share of samples)")
        for share, frame in hottest(os.path.join(out, name)):
            print(f"  {share * 100:5.1f}%  {frame}")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
