"""How much slower this machine runs a sandbox's kind of work than the host the bounds were set
on: 1 on the host, the measured ratio in the cgroup v2 guest (tests/guest).

A bound of a cgroup test that depends on speed (a wall time, a step's own CPU cost) is its host
figure times `pace()`. The guest suite's launcher measures `reference_seconds()` on the host and
passes it in `KHALA_HOST_PACE`; the guest measures the same work itself, and divides by the
host's figure, or by HOST_AT_REST when the host measured slower than that (it was busy). Without
that variable (any run on a host) `pace()` is 1 and every bound is the host's, unchanged.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time

HOST_PACE_ENV = "KHALA_HOST_PACE"
ROUNDS = 3
# What a sandbox's bounds cover: processes started and killed (fork, exec, the dynamic loader,
# exit) and computing; the best of ROUNDS, so a busy moment does not count.
STARTS = ["/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8; do /bin/true; done"]


def reference_seconds() -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.monotonic()
        subprocess.run(STARTS, check=True, timeout=600)
        sum(i * i for i in range(300_000))
        best = min(best, time.monotonic() - started)
    return best


# The reference work on this project's development host when it is not loaded (2 vCPUs): the
# speed its bounds were set at. A host measured while busy (the rest of `make test` runs beside
# the guest) is slower than that, and its figure would make the guest's bounds too tight.
HOST_AT_REST = 0.05


@functools.cache
def pace() -> float:
    host = os.environ.get(HOST_PACE_ENV)
    if not host:
        return 1.0
    return max(1.0, reference_seconds() / min(float(host), HOST_AT_REST))
