"""Per-run cgroups: one fresh cgroup per sandboxed step, on cgroup v1 or v2.

A `CgroupTree` is the `khala` directory this process creates its runs under (one per v1
controller, or one on the v2 unified hierarchy). `CgroupTree.create()` makes a `RunCgroup` with
the memory (swap included where the kernel offers it) and pids limits, and a CPU rate (CFS
bandwidth: v1's `cpu.cfs_quota_us` over `cpu.cfs_period_us`, v2's `cpu.max`) where the cpu
controller is ours; the sandbox writes its
child's pid into `RunCgroup.procs_files` before the child can fork; afterwards it reads the CPU
time, peak memory and the OOM/pids counters, kills whatever is left and removes the directories.

Only directories created here are ever written to or removed; the `khala` parents are kept
(other runs of other processes may share them) and are harmless when empty.
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import time
from abc import ABC, abstractmethod

from khala.errors import SandboxUnavailable

CGROUP_ROOT = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"
V1_CONTROLLERS = ("memory", "pids", "cpuacct")
V2_CONTROLLERS = ("memory", "pids")
CPU_CONTROLLER = "cpu"  # optional on both versions: without it a step can have no CPU rate
CPU_PERIOD_US = 100_000  # the CFS bandwidth period; a rate r gets r × period of CPU per period
CPU_QUOTA_MIN_US = 1000  # the kernel's smallest quota
PARENT_NAME = "khala"
KILL_SECONDS = 5.0
READ_CHUNK = 65536


def read_text(path: str) -> str:
    """The whole of a small kernel file (a cgroup's). Raw calls, not a buffered file object,
    whose set-up (fstat, isatty, lseek) more than doubles the system calls of each of the
    few dozen cgroup files a step reads and writes."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, READ_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def write_text(path: str, value: str) -> None:
    """Write `value` to a kernel file (a cgroup's) in one call; OSError as the kernel says."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_int(path: str, default: int = 0) -> int:
    try:
        text = read_text(path).strip()
    except OSError:
        return default
    return int(text) if text.lstrip("-").isdigit() else default


def read_keyed(path: str) -> dict[str, int]:
    """A flat keyed file ("key value" lines: memory.events, pids.events, cpu.stat …)."""
    values: dict[str, int] = {}
    try:
        text = read_text(path)
    except OSError:
        return values
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def own_cgroups(text: str) -> dict[str, str]:
    """Parse /proc/self/cgroup: controller → path ("" is the v2 unified entry)."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller.removeprefix("name=")] = parts[2]
    return paths


def _under(base: str, rel: str) -> str:
    return os.path.join(base, rel.lstrip("/"))


def cpu_quota(rate: float | None) -> int | None:
    """The CFS quota (µs per CPU_PERIOD_US) of a CPU rate; None: no rate, no quota."""
    if rate is None:
        return None
    return max(CPU_QUOTA_MIN_US, round(rate * CPU_PERIOD_US))


Limits3 = tuple[int | None, int | None, float | None]  # memory, pids, CPU rate


class RunCgroup(ABC):
    """The cgroup(s) of one run."""

    def __init__(self, dirs: list[str]) -> None:
        self.dirs = dirs
        self.name = os.path.basename(dirs[0])
        # The memory, pids and CPU rate limits the files hold (a fresh cgroup: none); None:
        # unknown.
        self.limits: Limits3 | None = (None, None, None)
        self._throttled_base = 0  # cpu.stat cannot be zeroed: what came before the step
        self._procs = [os.path.join(d, "cgroup.procs") for d in dirs]
        self._emptied = False  # seen empty after its step (kill_all): nothing left to kill

    @property
    def procs_files(self) -> list[str]:
        """Files the child writes its own pid into (one per hierarchy)."""
        return list(self._procs)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self._procs:
            try:
                found.update(int(x) for x in read_text(path).split())
            except OSError:
                continue
        return sorted(found)

    def start(self, memory: int | None, pids: int | None, cpu_rate: float | None = None
              ) -> None:
        """Set the limits and zero the CPU and peak counters: a cgroup made ahead, whose
        waiting process used some, starts the step from zero. SandboxUnavailable if a limit
        cannot be set."""
        self.set_limits(memory, pids, cpu_rate)
        self.zero_counters()

    def set_limits(self, memory: int | None, pids: int | None,
                   cpu_rate: float | None = None) -> None:
        """Make the memory, pids and CPU rate limits these (None: no limit), writing only the
        files whose value differs from what they hold (a warm box writes its guess ahead of the
        step). SandboxUnavailable if a limit cannot be set (a CPU rate without the cpu
        controller); every file is written next time."""
        if self.limits == (memory, pids, cpu_rate):
            return
        before, self.limits = self.limits, None
        try:
            self._write_limits(memory, pids, before[:2] if before is not None else None)
            if before is None or before[2] != cpu_rate:
                self._write_cpu_rate(cpu_rate)
        except OSError as exc:
            raise SandboxUnavailable(f"cannot set up cgroup {self.name}: {exc}") from exc
        self.limits = (memory, pids, cpu_rate)

    @abstractmethod
    def _write_limits(self, memory: int | None, pids: int | None,
                      before: tuple[int | None, int | None] | None) -> None:
        """Write the limit files that differ from `before` (None: unknown, write all)."""

    @abstractmethod
    def _write_cpu_rate(self, rate: float | None) -> None:
        """Write the CPU bandwidth of `rate` CPUs (None: unlimited). SandboxUnavailable when
        a rate is asked and the cpu controller is not ours."""

    @abstractmethod
    def zero_counters(self) -> None:
        """Start the CPU and peak-memory counters from zero (SandboxUnavailable if not)."""

    @abstractmethod
    def cpu_seconds(self) -> float: ...

    @abstractmethod
    def cpu_split(self) -> tuple[float, float]:
        """User and system CPU seconds as the cgroup counts them apart (on v1 by ticks: only
        their proportion is meant; `cpu_seconds` is the exact total)."""

    def cpu_throttled(self) -> int:
        """CFS periods in which the CPU rate held the step back, since the counters were zeroed
        (cpu.stat's nr_throttled; 0 without a rate: an unlimited cgroup is never throttled)."""
        return self._throttled_total() - self._throttled_base

    def _throttled_total(self) -> int:
        path = self._cpu_stat()
        return read_keyed(path).get("nr_throttled", 0) if path else 0

    @abstractmethod
    def _cpu_stat(self) -> str:
        """The cpu controller's cpu.stat ("" when the controller is not ours)."""

    @abstractmethod
    def memory_peak(self) -> int: ...

    @abstractmethod
    def memory_now(self) -> int:
        """Bytes the run's processes use now."""

    @abstractmethod
    def oom_killed(self) -> bool: ...

    @abstractmethod
    def pids_limit_hit(self) -> bool: ...

    def kill_all(self, timeout: float = KILL_SECONDS) -> bool:
        """SIGKILL every process until none is left: True once the cgroup is seen empty, False
        if some survived `timeout`.

        Every pass signals what it found before it looks at the deadline, so `timeout=0` is
        one round of SIGKILL without waiting (not a no-op); it is True only if there was
        nothing to kill, on either cgroup version."""
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            pids = self.pids()
            if not pids:
                # and stays so: no process is left in it to fork, and only the executor moves
                # processes in (before a step)
                self._emptied = True
                return True
            self._kill_round(pids)
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _kill_round(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def remove(self, timeout: float = KILL_SECONDS) -> bool:
        """Kill what is left and remove the directories; False if something stayed."""
        clean = self._emptied or self.kill_all(timeout)
        deadline = time.monotonic() + timeout
        for path in self.dirs:
            while True:
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last task is being released
                    if time.monotonic() >= deadline:
                        clean = False
                        break
                    time.sleep(0.002)
        return clean


class V1RunCgroup(RunCgroup):
    def __init__(self, dirs: dict[str, str], cpu_parent: str | None = None) -> None:
        super().__init__(list(dict.fromkeys(dirs.values())))  # cpu may share cpuacct's dir
        self.by_controller = dirs
        self._cpu_parent = cpu_parent  # the cpu controller's: its dir is made on a first rate

    def _write_cpu_rate(self, rate: float | None) -> None:
        if CPU_CONTROLLER not in self.by_controller:
            if rate is None:
                return
            if self._cpu_parent is None:
                raise SandboxUnavailable("the cgroup v1 cpu controller is not mounted: a step "
                                         "cannot have a CPU rate here")
            self._join_cpu(self._cpu_parent)
        quota = cpu_quota(rate)
        write_text(self._file(CPU_CONTROLLER, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
        write_text(self._file(CPU_CONTROLLER, "cpu.cfs_quota_us"),
                   "-1" if quota is None else str(quota))

    def _file(self, controller: str, name: str) -> str:
        return f"{self.by_controller[controller]}/{name}"  # a step reads a dozen: no join

    def _join_cpu(self, parent: str) -> None:
        """The run's directory under the cpu controller, its processes moved in (a stem waiting
        for its script, or none). Made only when a step asks for a CPU rate: a run cgroup
        without one costs a directory, a move and a removal less, and counts and limits
        everything else as before (the cpu controller holds only the rate and cpu.stat)."""
        path = os.path.join(parent, self.name)
        os.mkdir(path, 0o755)
        self.by_controller[CPU_CONTROLLER] = path
        self.dirs.append(path)
        self._procs.append(os.path.join(path, "cgroup.procs"))
        for pid in self.pids():
            write_text(self._procs[-1], str(pid))

    def _write_limits(self, memory: int | None, pids: int | None,
                      before: tuple[int | None, int | None] | None) -> None:
        if before is None or memory != before[0]:
            limit = self._file("memory", "memory.limit_in_bytes")
            memsw = self._file("memory", "memory.memsw.limit_in_bytes")
            files = [limit, memsw] if os.path.exists(memsw) else [limit]  # swap accounting on
            # memory ≤ memory + swap at every moment: raising the limit writes memsw first
            old = before[0] if before is not None else None
            raising = memory is None or (before is not None and old is not None and memory > old)
            value = "-1" if memory is None else str(memory)
            try:
                for path in reversed(files) if raising else files:
                    write_text(path, value)
            except OSError:
                if before is not None:
                    raise
                for path in files if raising else reversed(files):  # unknown: the other order
                    write_text(path, value)
        if before is None or pids != before[1]:
            write_text(self._file("pids", "pids.max"), "max" if pids is None else str(pids))

    def zero_counters(self) -> None:
        try:
            write_text(self._file("cpuacct", "cpuacct.usage"), "0")
            write_text(self._file("memory", "memory.max_usage_in_bytes"), "0")
        except OSError as exc:
            raise SandboxUnavailable(f"cannot set up cgroup {self.name}: {exc}") from exc
        self._throttled_base = self._throttled_total()

    def _cpu_stat(self) -> str:
        cpu = self.by_controller.get(CPU_CONTROLLER)
        return os.path.join(cpu, "cpu.stat") if cpu else ""

    def cpu_seconds(self) -> float:
        return read_int(self._file("cpuacct", "cpuacct.usage")) / 1e9

    def cpu_split(self) -> tuple[float, float]:  # zeroed with cpuacct.usage
        return (read_int(self._file("cpuacct", "cpuacct.usage_user")) / 1e9,
                read_int(self._file("cpuacct", "cpuacct.usage_sys")) / 1e9)

    def memory_peak(self) -> int:
        return read_int(self._file("memory", "memory.max_usage_in_bytes"))

    def memory_now(self) -> int:
        return read_int(self._file("memory", "memory.usage_in_bytes"))

    def oom_killed(self) -> bool:
        control = read_keyed(self._file("memory", "memory.oom_control"))
        if "oom_kill" in control:
            return control["oom_kill"] > 0
        return read_int(self._file("memory", "memory.failcnt")) > 0  # kernels before 4.13

    def pids_limit_hit(self) -> bool:
        return read_keyed(self._file("pids", "pids.events")).get("max", 0) > 0


class CgroupTree(ABC):
    """Where this process creates run cgroups."""

    version: int = 0

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def _run_name(self) -> str:
        return f"run-{os.getpid()}-{next(self._counter)}-{secrets.token_hex(3)}"

    @abstractmethod
    def create(self, memory: int | None, pids: int | None,
               cpu_rate: float | None = None) -> RunCgroup: ...

    @abstractmethod
    def parents(self) -> list[str]:
        """The `khala` parent directories (for leak checks)."""

    @property
    @abstractmethod
    def cpu_rates(self) -> bool:
        """Whether run cgroups here can have a CPU rate (the cpu controller is ours)."""

    def leftovers(self, prefix: str = "run-") -> list[str]:
        """Run cgroups still present under the parents whose name starts with `prefix`."""
        found = []
        for parent in self.parents():
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            found += [os.path.join(parent, n) for n in names if n.startswith(prefix)]
        return sorted(found)


class V1Tree(CgroupTree):
    version = 1

    def __init__(self, parents: dict[str, str]) -> None:
        super().__init__()
        self._parents = parents
        # co-mounted controllers (cpu,cpuacct) are one directory: one run dir for both
        self._real = {controller: os.path.realpath(parent) for controller, parent in
                      parents.items()}

    def parents(self) -> list[str]:
        return list(self._parents.values())

    @property
    def cpu_rates(self) -> bool:
        return CPU_CONTROLLER in self._parents

    def create(self, memory: int | None, pids: int | None,
               cpu_rate: float | None = None) -> RunCgroup:
        name = self._run_name()
        dirs: dict[str, str] = {}
        made: dict[str, str] = {}  # parent → the run's dir (co-mounted controllers share one)
        try:
            for controller, parent in self._parents.items():
                if controller == CPU_CONTROLLER and cpu_rate is None:
                    continue  # made on a first rate (V1RunCgroup._join_cpu)
                path = made.get(self._real[controller])
                if path is None:
                    path = os.path.join(parent, name)
                    os.mkdir(path, 0o755)
                    made[self._real[controller]] = path
                dirs[controller] = path
            cpu_parent = self._parents.get(CPU_CONTROLLER)
            if CPU_CONTROLLER not in dirs and cpu_parent is not None:
                shared = made.get(self._real[CPU_CONTROLLER])  # co-mounted with cpuacct
                if shared is not None:
                    dirs[CPU_CONTROLLER], cpu_parent = shared, None
            run = V1RunCgroup(dirs, cpu_parent if CPU_CONTROLLER not in dirs else None)
            run.set_limits(memory, pids, cpu_rate)  # a fresh cgroup's counters start at zero
        except (OSError, SandboxUnavailable) as exc:
            for path in made.values():
                rmdir_quiet(path)
            raise SandboxUnavailable(f"cannot set up cgroup {name}: {exc}") from exc
        return run


def rmdir_quiet(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass
