"""Core files of steps that may write one (a task's `core_limit`): whether the host's kernel
writes them where the step runs, and whether one was written.

The kernel names a core file after `kernel.core_pattern`; only a plain relative name (`core`,
Debian's default, with `kernel.core_uses_pid` perhaps `core.PID`) puts it in the crashing
process's working directory: the step's work area, bounded by its size and by RLIMIT_CORE. A
pattern with a path or a pipe would write it elsewhere on the host, so steps then get no core
files whatever the task asks.
"""

from __future__ import annotations

import os

CORE_PATTERN = "/proc/sys/kernel/core_pattern"


def cores_stay_local(path: str = CORE_PATTERN) -> bool:
    """Whether a step's core file lands in its own working directory."""
    try:
        with open(path) as fh:
            pattern = fh.read().strip()
    except OSError:
        return False
    return bool(pattern) and "/" not in pattern and not pattern.startswith("|")


def core_written(workdir: str, since: float) -> bool:
    """Whether a step left a core file (`core` or `core.PID`) in `workdir`, modified at
    `since` (epoch seconds) or later."""
    try:
        names = [n for n in os.listdir(workdir)
                 if n == "core" or (n.startswith("core.") and n[5:].isdigit())]
        return any(os.lstat(os.path.join(workdir, n)).st_mtime >= since for n in names)
    except OSError:
        return False
