"""`python -m benchmarks.bounds [--only cpu,wake] [--seconds S] [--runs N]`: measurements
behind the bounds docs/performance.md gives for the missed targets (not figures of their own).

- `cpu`: where the CPU goes in the throughput figure. The raw loop, then the cluster with 32
  long-poll clients, each for S seconds; for every process (by role: executor, judicator,
  gateway, the clients, the boxes' inits with their steps, etcd, `khala up`) its user and
  system CPU per finished task, read from /proc, and the host's idle share. The ratio of the
  two CPU totals per task is what the throughput ratio tends to when both saturate the CPUs.
- `wake`: what a process made ahead costs when it is woken to exec `/bin/true` (the warm
  sandbox's stem is one: a fork of the box's Python init), against `subprocess.run` of
  `/bin/true` (the sandbox figure's baseline); no sandbox involved. Medians of N.
"""

from __future__ import annotations

import argparse
import collections
import os
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import sandbox
from khala.sandbox.warm import WarmSandbox

HZ = os.sysconf("SC_CLK_TCK")
ROLES = (("khala executor", "executor"), ("khala judicator", "judicator"),
         ("khala gateway", "gateway"), ("khala up", "khala up"), ("etcd", "etcd"),
         ("-I -S /proc/self/fd/", "box inits and steps"))


@dataclass
class Proc:
    role: str
    user: int  # clock ticks, the process's own plus its reaped children's
    system: int


def role_of(cmdline: str, pid: int) -> str | None:
    if pid == os.getpid():
        return "benchmark (the clients)"
    for needle, role in ROLES:
        if needle in cmdline:
            return role
    return None


def processes() -> dict[int, Proc]:
    """Every process of a role, with its CPU so far (children it reaped included)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        role = role_of(cmdline, int(name))
        if role is None:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        user = int(fields[11]) + int(fields[13])
        system = int(fields[12]) + int(fields[14])
        found[int(name)] = Proc(role, user, system)
    return found


def host_idle() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        values = [int(x) for x in fh.readline().split()[1:]]
    return values[3] + values[4], sum(values)


class Sampler:
    """CPU per role between `start` and `stop` (call `stop` while the processes still live)."""

    def start(self) -> None:
        self.before, self.idle_before = processes(), host_idle()

    def stop(self) -> None:
        self.after, self.idle_after = processes(), host_idle()

    def per_role(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        for pid, proc in self.after.items():
            old = self.before.get(pid, Proc(proc.role, 0, 0))
            totals[proc.role][0] += (proc.user - old.user) / HZ
            totals[proc.role][1] += (proc.system - old.system) / HZ
        return {role: (u, s) for role, (u, s) in totals.items()}

    def idle(self) -> float:
        idle = self.idle_after[0] - self.idle_before[0]
        return idle / max(1, self.idle_after[1] - self.idle_before[1])


def measure_cpu(name: str, loop: Callable[[float], float], seconds: float) -> float:
    """Run `loop` (a throughput loop), print CPU ms per task by role; the total. The CPU is
    read right before the loop tears its processes down (the cluster's stop, the raw loop's
    sandbox close): a killed box's init and steps are nobody's reaped children after."""
    sampler = Sampler()
    originals = [(sandbox.KhalaUp, "stop", sandbox.KhalaUp.stop),
                 (WarmSandbox, "close", WarmSandbox.close)]

    def sampled(original: Any) -> Callable[[Any], None]:
        def teardown(self: Any) -> None:
            if not hasattr(sampler, "after"):
                sampler.stop()
            original(self)
        return teardown

    for owner, attr, original in originals:
        setattr(owner, attr, sampled(original))
    try:
        sampler.start()
        rate = loop(seconds)
    finally:
        for owner, attr, original in originals:
            setattr(owner, attr, original)
    if not hasattr(sampler, "after"):
        sampler.stop()
    tasks = max(1.0, rate * seconds)
    print(f"\n{name}: {rate:.1f} tasks/s, host idle {sampler.idle():.0%}")
    total = 0.0
    for role, (user, system) in sorted(sampler.per_role().items(),
                                       key=lambda kv: -sum(kv[1])):
        total += (user + system) / tasks * 1000
        print(f"  {role:26s} {(user + system) / tasks * 1000:6.2f} ms/task"
              f"  (user {user / tasks * 1000:5.2f}, system {system / tasks * 1000:5.2f})")
    print(f"  {'total':26s} {total:6.2f} ms/task")
    return total


def figure_cpu(seconds: float) -> None:
    raw = measure_cpu("raw loop (run_task on 2 threads)", sandbox.raw_loop, seconds)
    cluster = measure_cpu("cluster (khala up, 32 long-poll clients)", sandbox.cluster_loop,
                          seconds)
    print(f"\nCPU per task, raw ÷ cluster: {raw / cluster:.2f} (the throughput ratio when both "
          "saturate the CPUs; 0.8 needs the cluster at ≤ 1.25 × the raw loop's CPU per task)")


def woken_exec(child: Callable[[int], None]) -> float:
    """Seconds from waking a process made ahead (it waits on a socket) to its exit: it runs
    `child(fd)` in the fork, which must read one message from fd and exec."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            child(theirs.fileno())
        finally:
            os._exit(127)
    theirs.close()
    pidfd = os.pidfd_open(pid)
    try:
        time.sleep(0.005)  # it is waiting by now
        started = time.perf_counter()
        ours.send(b"go\n")
        if not select.select([pidfd], [], [], 10)[0]:
            os.kill(pid, 9)
            raise RuntimeError("a woken process did not exit within 10 s")
        return time.perf_counter() - started
    finally:
        os.waitpid(pid, 0)
        os.close(pidfd)
        ours.close()


def python_stem(fd: int) -> None:
    """Like the warm box's stem: a fork of a Python process that reads its request and execs."""
    os.read(fd, 64)
    os.execve("/bin/true", ["/bin/true"], {"PATH": "/usr/bin:/bin"})


def shell_stem(fd: int) -> None:
    """A small native waiter made ahead (dash, exec'd before the wake): reads, then execs."""
    os.dup2(fd, 0)
    os.execv("/bin/sh", ["/bin/sh", "-c", "read -r x; exec /bin/true"])


def bare_true() -> float:
    started = time.perf_counter()
    subprocess.run(["/bin/true"], check=True)
    return time.perf_counter() - started


def figure_wake(runs: int) -> None:
    cases: dict[str, Callable[[], float]] = {
        "subprocess.run(/bin/true) (the sandbox figure's baseline)": bare_true,
        "a forked Python process woken to exec /bin/true (the stem)":
            lambda: woken_exec(python_stem),
        "a shell made ahead woken to exec /bin/true": lambda: woken_exec(shell_stem),
    }
    values: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):  # interleaved: every case sees the same load
        for name, case in cases.items():
            values[name].append(case())
    base = statistics.median(next(iter(values.values())))
    print(f"\nwake to exit, median of {runs}:")
    for name, got in values.items():
        median = statistics.median(got)
        print(f"  {name:60s} {median * 1000:6.3f} ms  (+{(median - base) * 1000:.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="cpu,wake")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    chosen = {x.strip() for x in args.only.split(",") if x.strip()}
    if not chosen <= {"cpu", "wake"}:
        parser.error("--only takes cpu and/or wake")
    print(f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs", flush=True)
    if "wake" in chosen:
        figure_wake(args.runs)
    if "cpu" in chosen:
        figure_cpu(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
