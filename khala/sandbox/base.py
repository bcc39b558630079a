"""The sandbox interface: run one step (compile or execute) contained, measured, cleaned up."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from khala.model import StepReport

MIB = 1024 * 1024


@dataclass
class Limits:
    """Limits of one run. None means no limit of that kind."""

    wall_time: float | None = None  # seconds
    cpu_time: float | None = None  # CPU seconds (RLIMIT_CPU, checked against the cgroup)
    memory: int | None = None  # bytes (cgroup)
    pids: int | None = None  # processes + threads (cgroup)
    output: int = 64 * MIB  # bytes per captured stream
    file_size: int | None = 256 * MIB  # RLIMIT_FSIZE
    open_files: int | None = 256  # RLIMIT_NOFILE
    stack: int | None = 64 * MIB  # RLIMIT_STACK
    disk: int | None = None  # bytes of the run's work area (the task's, shared by its steps)
    cpu_rate: float | None = None  # CPUs at once (cgroup CPU bandwidth); None: no rate
    core: int | None = 0  # RLIMIT_CORE: bytes of a core file the step may write in its cwd
    # (0 = none; None = left as inherited, for a warm box whose steps set their own)


class StdinFeed(Protocol):
    """The live input of a step (khala/streams/feed.py)."""

    def start(self, fd: int) -> None: ...

    def stop(self) -> None: ...


class SignalBox:
    """Signals for the processes of a task's running step (API v2). The sandbox attaches a
    sender while a step runs; a signal sent between steps waits for the next step."""

    MAX_PENDING = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[int] = []
        self._sender: Callable[[int], None] | None = None
        self._probe: Callable[[], dict[str, Any]] | None = None

    def send(self, signum: int) -> None:
        with self._lock:
            if self._sender is None:
                if len(self._pending) < self.MAX_PENDING:
                    self._pending.append(signum)
                return
            self._sender(signum)

    def attach(self, sender: Callable[[int], None],
               probe: Callable[[], dict[str, Any]] | None = None) -> None:
        """`probe`: what the running step uses now (executor statistics)."""
        with self._lock:
            self._sender = sender
            self._probe = probe
            pending, self._pending = self._pending, []
            for signum in pending:
                sender(signum)

    def detach(self) -> None:
        with self._lock:
            self._sender = None
            self._probe = None

    def usage(self) -> dict[str, Any]:
        """The running step's usage now (cpu_time, memory, pids, pid and its cgroup's
        `counters`, khala/sandbox/cgstats.py, as the sandbox can measure them); empty between
        steps."""
        with self._lock:
            probe = self._probe
        try:
            return probe() if probe is not None else {}
        except OSError:
            return {}


@dataclass
class RunSpec:
    argv: list[str]
    workdir: str  # host path of the task's work directory; the only writable place
    stdin_path: str | None = None  # host path fed to stdin, or /dev/null
    env: dict[str, str] = field(default_factory=dict)  # exactly the step's (over the defaults)
    limits: Limits = field(default_factory=Limits)
    cwd: str = ""  # the working directory, relative to the work dir (made by `make_cwd`)
    network: bool = False  # a user network stack instead of no network (bwrap, if allowed)
    hostname: str = ""  # the UTS namespace's host name (bwrap); "" = "khala"
    signals: SignalBox | None = None  # signals for the running processes, when given
    # Live output: called with ("stdout"|"stderr", bytes) as the step writes them
    # (the bytes the capture keeps); must not block.
    tap: Callable[[str, bytes], None] | None = None
    # Live input: when given, stdin is a pipe whose write end goes to
    # `stdin_feed.start(fd)` (it owns the fd) and `stdin_feed.stop()` when the step ends;
    # `stdin_path` is then not used.
    stdin_feed: StdinFeed | None = None
    # The host (uid, gid) the step runs as; None: the sandbox's own user. The caller checked
    # it against the operator's table (khala/rules/identity.py); a backend never runs root.
    identity: tuple[int, int] | None = None
    # The root filesystem the step sees as `/`: an unpacked image's directory (bound
    # read-only; docs/images.md); None: the host's own (its /usr and the /bin, /lib… links).
    root: str | None = None


@dataclass
class RunOutcome:
    stdout: bytes
    stderr: bytes
    report: StepReport
    detail: str = ""  # why the sandbox itself failed, for the log (may name host paths)


def make_dirs_nofollow(top: str, rel: str) -> None:
    """mkdir -p `rel` under `top`, each level opened with O_NOFOLLOW relative to its parent's
    fd (no race with a symlink), new levels owned like `top`, mode 0700."""
    st = os.stat(top)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in [p for p in rel.split("/") if p not in ("", ".")]:
            if part == "..":
                raise OSError(errno.EPERM, "a working directory may not leave the work area")
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
                os.chown(part, st.st_uid, st.st_gid, dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                pass
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


class Sandbox(ABC):
    """Runs steps. Implementations must kill the whole process tree when a run ends."""

    name: str = "abstract"

    @abstractmethod
    def run(self, spec: RunSpec, cancel: threading.Event) -> RunOutcome:
        """Run to the end, a limit, or until `cancel` is set (reason `cancelled`)."""

    def open_workdir(self, workdir: str, size: int | None) -> None:  # noqa: B027 - optional
        """Bound the (empty) `workdir` to `size` bytes for the whole run, before any file is
        laid out. Default: nothing (the work dir's size is not bounded)."""

    def close_workdir(self, workdir: str) -> None:  # noqa: B027 - optional hook
        """Undo `open_workdir` at the end of the run (its files may go with it)."""

    def prepare_workdir(self, workdir: str,  # noqa: B027 - optional hook
                        identity: tuple[int, int] | None = None) -> None:
        """Make `workdir` usable by the sandboxed user (`identity`, else the sandbox's own:
        ownership, modes). Default: nothing."""

    def place_file(self, source: str, target: str) -> None:
        """Make the host file `source` (a cached file runs must not change) readable at
        `target`, a new name in a prepared work dir (after `prepare_workdir`), without
        copying it where that can be done. Default: a hard link when both are on one
        filesystem, else a copy (0444). Raises OSError."""
        try:
            os.link(source, target)
            return
        except OSError:
            pass
        shutil.copyfile(source, target)
        os.chmod(target, 0o444)

    def make_cwd(self, workdir: str, cwd: str) -> None:
        """Create the step's working directory `cwd` (relative, checked) under `workdir`, owned
        like `workdir`, never following a symlink a previous step left (OSError if a part of
        it is one, or not a directory)."""
        make_dirs_nofollow(workdir, cwd)

    def supports(self, spec: RunSpec) -> str:
        """Why this sandbox cannot run `spec` as asked ("" = it can): a backend without a
        network stack or CPU rates says so instead of running the step without them."""
        return ""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release host resources (e.g. the parent cgroup)."""
