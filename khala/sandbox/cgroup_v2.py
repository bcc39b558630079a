"""Per-run cgroups on the cgroup v2 unified hierarchy: one directory per run under the
`khala` parent, every controller in it (khala/sandbox/cgroups.py has the common part and v1)."""

from __future__ import annotations

import os

from khala.errors import SandboxUnavailable
from khala.sandbox.cgroups import (
    CPU_CONTROLLER,
    CPU_PERIOD_US,
    CgroupTree,
    RunCgroup,
    cpu_quota,
    read_int,
    read_keyed,
    read_text,
    rmdir_quiet,
    write_text,
)


class V2RunCgroup(RunCgroup):
    def __init__(self, dirs: list[str]) -> None:
        super().__init__(dirs)
        self._cpu_base = 0.0  # v2 has no writable CPU counter: what the stem used
        self._split_base = (0.0, 0.0)

    def _write_limits(self, memory: int | None, pids: int | None,
                      before: tuple[int | None, int | None] | None) -> None:
        path = self.dirs[0]
        if before is None or memory != before[0]:
            write_text(os.path.join(path, "memory.max"), "max" if memory is None else str(memory))
            if memory is not None:  # no swap; an OOM kills the whole group
                for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                    if os.path.exists(os.path.join(path, name)):
                        write_text(os.path.join(path, name), value)
        if before is None or pids != before[1]:
            write_text(os.path.join(path, "pids.max"), "max" if pids is None else str(pids))

    def _write_cpu_rate(self, rate: float | None) -> None:
        path = os.path.join(self.dirs[0], "cpu.max")
        if not os.path.exists(path):
            if rate is None:
                return
            raise SandboxUnavailable("the cgroup v2 cpu controller is not enabled for run "
                                     "cgroups: a step cannot have a CPU rate here")
        quota = cpu_quota(rate)
        write_text(path, f"{'max' if quota is None else quota} {CPU_PERIOD_US}")

    def zero_counters(self) -> None:
        peak = os.path.join(self.dirs[0], "memory.peak")
        if os.path.exists(peak):
            try:
                write_text(peak, "reset")  # kernel 6.12+; older ones keep the peak
            except OSError:
                pass
        self._cpu_base = self._cpu_total()
        self._split_base = self._split_total()
        self._throttled_base = self._throttled_total()

    def _cpu_stat(self) -> str:
        return os.path.join(self.dirs[0], "cpu.stat")

    def _cpu_total(self) -> float:
        return read_keyed(os.path.join(self.dirs[0], "cpu.stat")).get("usage_usec", 0) / 1e6

    def _split_total(self) -> tuple[float, float]:
        stat = read_keyed(os.path.join(self.dirs[0], "cpu.stat"))
        return stat.get("user_usec", 0) / 1e6, stat.get("system_usec", 0) / 1e6

    def cpu_split(self) -> tuple[float, float]:
        user, system = self._split_total()
        return user - self._split_base[0], system - self._split_base[1]

    def cpu_seconds(self) -> float:
        return self._cpu_total() - self._cpu_base

    def memory_peak(self) -> int:
        return read_int(os.path.join(self.dirs[0], "memory.peak"))  # kernel 5.19+; else 0

    def memory_now(self) -> int:
        return read_int(os.path.join(self.dirs[0], "memory.current"))

    def oom_killed(self) -> bool:
        events = read_keyed(os.path.join(self.dirs[0], "memory.events"))
        return events.get("oom_kill", 0) > 0 or events.get("oom_group_kill", 0) > 0

    def pids_limit_hit(self) -> bool:
        return read_keyed(os.path.join(self.dirs[0], "pids.events")).get("max", 0) > 0

    def _kill_round(self, pids: list[int]) -> None:
        kill_file = os.path.join(self.dirs[0], "cgroup.kill")
        try:  # kernel 5.14+: kills the whole subtree at once, forks in flight included
            write_text(kill_file, "1")
            return
        except OSError:
            pass
        super()._kill_round(pids)


class V2Tree(CgroupTree):
    version = 2

    def __init__(self, parent: str) -> None:
        super().__init__()
        self._parent = parent

    def parents(self) -> list[str]:
        return [self._parent]

    @property
    def cpu_rates(self) -> bool:
        try:
            enabled = read_text(os.path.join(self._parent, "cgroup.subtree_control")).split()
        except OSError:
            return False
        return CPU_CONTROLLER in enabled

    def create(self, memory: int | None, pids: int | None,
               cpu_rate: float | None = None) -> RunCgroup:
        name = self._run_name()
        path = os.path.join(self._parent, name)
        try:
            os.mkdir(path, 0o755)
        except OSError as exc:
            raise SandboxUnavailable(f"cannot set up cgroup {path}: {exc}") from exc
        run = V2RunCgroup([path])
        try:
            run.set_limits(memory, pids, cpu_rate)  # a fresh cgroup's counters start at zero
        except SandboxUnavailable:
            rmdir_quiet(path)
            raise
        return run
