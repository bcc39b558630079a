"""The bubblewrap backend: namespaces + a fresh cgroup + rlimits + seccomp for every step.

Each run (the wait, the limits and the classification are the core's, `khala.sandbox.core`):
1. creates a fresh cgroup (memory incl. swap, pids) — `khala.sandbox.cgroups`;
2. forks; the child (still root) writes its own pid into the cgroup, sets the rlimits, drops to
   the sandbox uid/gid and execs bwrap, so bwrap and every descendant are counted and limited;
3. bwrap unshares every namespace (user, pid, net, ipc, uts, mount, cgroup), forbids nested user
   namespaces, binds /usr (and the /bin, /lib… links) and a generated /etc read-only
   (`khala.sandbox.etc`), a fresh /proc and /dev, a size-limited private /tmp and the work dir
   read-write at /work (the step's working directory is /work or a directory under it), sets
   exactly the step's environment (bubblewrap itself runs with an empty one: nothing a task
   sets reaches a process outside the sandbox), and installs the seccomp filter
   (`khala.sandbox.seccomp`);
4. with the network (`khala.sandbox.network`), holds the step until slirp4netns is attached
   to its namespace and the denied ranges are unreachable;
5. at the end kills everything left in the cgroup, reads the usage and removes the cgroup.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import resource
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from khala.errors import SandboxUnavailable
from khala.model import Reason
from khala.sandbox import rusage, workarea
from khala.sandbox.base import MIB, Limits, RunSpec
from khala.sandbox.cgroup_detect import detect
from khala.sandbox.cgroups import CgroupTree, RunCgroup
from khala.sandbox.cgstats import counters
from khala.sandbox.core import DEFAULT_PATH, CoreSandbox, Process, Usage, apply_rlimits, rlimits
from khala.sandbox.coredump import core_written
from khala.sandbox.etc import GENERATED_ETC, make_etc
from khala.sandbox.fstree import chown_tree, remove_tree
from khala.sandbox.identity import EtcDirs, check_identity, grandchild
from khala.sandbox.network import (
    NAMESERVER,
    READY_SECONDS,
    NetworkPolicy,
    StepNetwork,
    find_slirp,
    read_info,
)
from khala.sandbox.seccomp import build_filter, filter_fd
from khala.sandbox.sigdefault import defaulter

log = logging.getLogger(__name__)

SANDBOX_UID = 65534
SANDBOX_GID = 65534
INSIDE_WORKDIR = "/work"
TMP_SIZE = 64 * MIB
#: Cached files of at most this many bytes are copied into a work dir, not bound (place_file).
PLACE_COPY_MAX = 64 * 1024
#: Signals held for a step whose command does not exist yet (as many as a SignalBox holds).
MAX_HELD_SIGNALS = 64
# Top-level host entries mirrored into the sandbox (symlinks stay symlinks).
SYSTEM_ENTRIES = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# The sandbox's pid 1, a shell waiting for the step's command in a subshell (which execs it,
# its stderr the step's own, its environment exactly the step's; the shell's job messages go
# nowhere). bwrap itself waits for this pid 1, so the wait4 of bwrap counts the command and all
# it waited for; bwrap's own pid 1 reaper would report the command's exit to bwrap by an
# eventfd and never be waited for.
RELAY = 'exec 3>&2 2>&-; (exec 2>&3 3>&-; unset PWD OLDPWD; exec "$@"); exit $?'
# Signals whose default action writes a core file (signal(7)).
CORE_SIGNALS = frozenset({signal.SIGQUIT, signal.SIGILL, signal.SIGTRAP, signal.SIGABRT,
                          signal.SIGBUS, signal.SIGFPE, signal.SIGSEGV, signal.SIGXCPU,
                          signal.SIGXFSZ, signal.SIGSYS})


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed (apt-get install bubblewrap)")
    return path


@dataclass
class Hold:
    """The fds of a step held for its network: bubblewrap writes its info (the sandbox's pid)
    to `info` and waits before the command until `block` is readable."""

    info: int
    block: int


def bwrap_argv(bwrap: str, spec: RunSpec, etc_dir: str, uid: int, gid: int,
               tmp_size: int, host_root: str = "/", seccomp_fd: int | None = None,
               hold: Hold | None = None) -> list[str]:
    """The bwrap command line of one run. Pure apart from looking at what `host_root` holds."""
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--uid", str(uid), "--gid", str(gid),
            "--hostname", spec.hostname or "khala"]
    argv += root_argv(etc_dir, spec.root, host_root)
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(tmp_size), "--tmpfs", "/dev/shm",
             "--perms", "1777", "--size", str(tmp_size), "--tmpfs", "/tmp",
             "--bind", spec.workdir, INSIDE_WORKDIR, "--chdir", inside_cwd(spec),
             "--remount-ro", "/dev", "--remount-ro", "/", "--cap-drop", "ALL"]
    for name, value in sandbox_env(spec).items():
        argv += ["--setenv", name, value]
    if hold is not None:
        argv += ["--info-fd", str(hold.info), "--block-fd", str(hold.block)]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv + ["--as-pid-1", "--", "/bin/sh", "-c", RELAY, "khala"] + list(spec.argv)


def inside_cwd(spec: RunSpec) -> str:
    """The step's working directory as it sees it: /work or a directory under it."""
    return posixpath.join(INSIDE_WORKDIR, spec.cwd) if spec.cwd else INSIDE_WORKDIR


def root_argv(etc_dir: str, image: str | None, host_root: str = "/") -> list[str]:
    """The mounts of the step's root filesystem and /etc. The host's: its /usr and the /bin,
    /lib… entries (symlinks stay symlinks) read-only and the generated /etc. An image's
    (`image`, an unpacked image, khala/executor/images.py): the whole directory read-only as
    `/`, its own /etc with the generated identity files bound over the image's (unpacking made
    them and the mount points, khala/images/tarball.py)."""
    argv: list[str] = []
    if image is not None:
        argv += ["--ro-bind", image, "/"]
        for name in GENERATED_ETC:
            argv += ["--ro-bind", os.path.join(etc_dir, name), "/etc/" + name]
        return argv
    for entry in SYSTEM_ENTRIES:
        host = os.path.join(host_root, entry)
        if os.path.islink(host):
            argv += ["--symlink", os.readlink(host), "/" + entry]
        elif os.path.isdir(host):
            argv += ["--ro-bind", host, "/" + entry]
    return argv + ["--ro-bind", etc_dir, "/etc"]


def sandbox_env(spec: RunSpec) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOME": INSIDE_WORKDIR, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    env.update(spec.env)
    return env


def child_setup(procs_files: list[str], limits: Limits, uid: int, gid: int) -> Callable[[], None]:
    """The preexec function: every signal at its default, join the cgroup, set rlimits, drop
    to the sandbox user. What the step creates is the sandbox user's alone (umask 077)."""
    pairs = rlimits(limits)
    default_signals = defaulter()

    def setup() -> None:
        default_signals()  # none ignored that the executor inherited (sigdefault.py)
        pid = str(os.getpid()).encode()
        for path in procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        apply_rlimits(pairs)
        os.umask(0o077)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return setup


def decode_status(status: int, killed: bool, core_file: bool = False) -> int:
    """bwrap exits 128+N when its child died of signal N; turn that back into a signal status
    (the shell's convention: a top process exiting 128+N cannot be told apart). The shell
    does not pass the core flag on: `core_file` (a core file appeared) sets it for a signal
    that dumps core."""
    if os.WIFEXITED(status) and not killed:
        code = os.WEXITSTATUS(status)
        if 128 < code < 128 + signal.NSIG:
            dumped = core_file and (code - 128) in CORE_SIGNALS
            return (code - 128) | (0x80 if dumped else 0)  # "killed by signal N"
    return status


def traversable(path: str, uid: int) -> bool:
    """Whether `uid` (not root, no groups) can reach `path` through its ancestors."""
    current = os.path.dirname(os.path.abspath(path))
    while True:
        st = os.stat(current)
        ok = st.st_mode & stat.S_IXOTH or (st.st_uid == uid and st.st_mode & stat.S_IXUSR)
        if not ok:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


class BwrapProcess(Process):
    """bwrap started in its run cgroup; usage and kill go through the cgroup."""

    def __init__(self, pid: int, cgroup: RunCgroup, core_dir: str | None = None,
                 network: StepNetwork | None = None) -> None:
        super().__init__(pid)
        self.cgroup = cgroup
        self.network = network
        self._command: int | None = None
        self._signal_lock = threading.Lock()
        self._held: list[int] = []  # signals sent before the command existed
        # Where a core file would land (a step that may dump core), and since when.
        self.core_dir, self.started = core_dir, time.time()

    def cpu_seconds(self) -> float | None:
        return self.cgroup.cpu_seconds()

    def step_pid(self) -> int:
        """The command, bwrap's grandchild (bwrap → the sandbox's pid 1 → the command); the
        signals held for it go once it is seen (the core asks at every tick)."""
        if self._command is None:
            with self._signal_lock:
                self._spot()
        return self._command or self.pid

    def _spot(self) -> None:
        """Look for the command (the signal lock held); send it what was held if found."""
        if self._command is None:
            self._command = grandchild(self.pid, self.cgroup.pids())
            if self._command is not None:
                held, self._held = self._held, []
                for signum in held:
                    self._send(signum)

    def kill(self, wait: bool) -> None:
        self.cgroup.kill_all() if wait else self.cgroup.kill_all(timeout=0.0)

    def signal(self, signum: int) -> None:
        """Every process of the run cgroup but bwrap itself (the sandbox's pid 1 ignores it,
        as a namespace init without a handler does). Until the command exists (bwrap setting
        up, the pid 1 not yet forked it) it would reach no one, or only that pid 1: it is
        held, in order, and sent when the command is seen."""
        with self._signal_lock:
            self._spot()
            if self._command is None:
                if len(self._held) < MAX_HELD_SIGNALS:
                    self._held.append(signum)
                return
            self._send(signum)

    def _send(self, signum: int) -> None:
        for pid in self.cgroup.pids():
            if pid != self.pid:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass

    def live_usage(self) -> dict[str, Any]:
        cg = self.cgroup
        return {"cpu_time": cg.cpu_seconds(), "memory": cg.memory_now(), "pids": len(cg.pids()),
                "pid": self.step_pid(), "counters": counters(cg)}

    def usage(self, waited: resource.struct_rusage | None, failed: bool = True) -> Usage:
        cg = self.cgroup
        cpu, peak = cg.cpu_seconds(), cg.memory_peak()
        measured = rusage.with_cgroup(rusage.from_wait(waited), cpu, cg.cpu_split(), peak)
        return Usage(cpu=cpu, memory=peak, oom=failed and cg.oom_killed(),
                     pids=failed and cg.pids_limit_hit(), rusage=measured,
                     throttled=cg.cpu_throttled())

    def decode(self, status: int, killed: bool) -> int:
        dumped = self.core_dir is not None and core_written(self.core_dir, self.started)
        return decode_status(status, killed, dumped)

    def release(self) -> bool:
        clean = self.cgroup.remove()
        if self.network is not None:
            self.network.close()
        return clean


class BwrapSandbox(CoreSandbox):
    """Runs each step under bubblewrap in a fresh cgroup, as an unprivileged user."""

    name = "bwrap"

    def __init__(self, tree: CgroupTree | None = None, bwrap: str | None = None,
                 uid: int = SANDBOX_UID, gid: int = SANDBOX_GID, tmp_size: int = TMP_SIZE,
                 network: NetworkPolicy | None = None) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailable("the bwrap sandbox needs the executor to run as root "
                                     "(to create cgroups and drop to the sandbox user)")
        self.bwrap = bwrap or find_bwrap()
        self.tree = tree or detect()
        self.uid, self.gid, self.tmp_size = uid, gid, tmp_size
        self.seccomp = build_filter()
        workarea.remove_stale()
        self._etc = make_etc(uid, gid, INSIDE_WORKDIR)
        self._other_etc = EtcDirs(INSIDE_WORKDIR)  # of the identities tasks ask for
        self.network = network or NetworkPolicy()
        self._net_etc = ""
        if self.network.allowed:
            find_slirp()
            self._net_etc = make_etc(uid, gid, INSIDE_WORKDIR, nameserver=NAMESERVER)

    def close(self) -> None:
        remove_tree(self._etc)
        self._other_etc.close()
        if self._net_etc:
            remove_tree(self._net_etc)

    def supports(self, spec: RunSpec) -> str:
        if spec.network and not self.network.allowed:
            return ("this executor does not allow the network (its operator's allow_network "
                    "setting is off)")
        if spec.network and spec.identity is not None:
            return ("a step runs with the network only as the sandbox's own user, not as a "
                    "host user the task names")
        if spec.limits.cpu_rate is not None and not self.tree.cpu_rates:
            return "this executor cannot set a CPU rate (no cgroup cpu controller of its own)"
        return ""

    def prepare_workdir(self, workdir: str, identity: tuple[int, int] | None = None) -> None:
        """Hand `workdir` (recursively, symlinks not followed) to the sandbox uid/gid, or to
        `identity`, private to it (0700: other local users cannot read a running task's files)."""
        uid, gid = self._ids(identity)
        if not traversable(workdir, uid):
            raise SandboxUnavailable(
                f"uid {uid} cannot reach the work dir: every parent directory must be "
                "searchable by others (mode o+x, e.g. 0711)")
        os.lchown(workdir, uid, gid)
        os.chmod(workdir, 0o700)
        chown_tree(workdir, uid, gid)

    def _ids(self, identity: tuple[int, int] | None) -> tuple[int, int]:
        if identity is None:
            return self.uid, self.gid
        check_identity(identity)
        return identity

    def open_workdir(self, workdir: str, size: int | None) -> None:
        """Mount a tmpfs of `size` bytes on `workdir`: the run's bounded work area."""
        if size is not None:
            workarea.mount(workdir, size)

    def close_workdir(self, workdir: str) -> None:
        workarea.unmount(workdir)

    def place_file(self, source: str, target: str) -> None:
        """A read-only bind of `source` on an empty file `target` (root's, 0444): the step
        reads the cached file itself; it cannot write, chmod, unlink or rename it (a mount
        point). A regular file of at most PLACE_COPY_MAX bytes is copied instead (root's,
        0444): a small copy costs less than the bind's two mount calls and the work area's
        unmount then waiting on them, and the step can do no more with it than with its own
        files. A copy too when the bind cannot be made (no work area mounted, say)."""
        info = os.stat(source)
        if stat.S_ISREG(info.st_mode) and info.st_size <= PLACE_COPY_MAX:
            super().place_file(source, target)
            return
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.close(fd)
        try:
            workarea.bind_readonly(source, target)
        except OSError:
            log.warning("cannot bind %s into a work dir; copying it", source, exc_info=True)
            os.unlink(target)
            super().place_file(source, target)

    def start(self, spec: RunSpec, stdin: int, stdout: int, stderr: int) -> Process:
        why = self.supports(spec)
        if why:
            raise SandboxUnavailable(why)
        uid, gid = self._ids(spec.identity)
        etc = self._etc if spec.identity is None else self._other_etc.get(uid, gid)
        cgroup = self.tree.create(spec.limits.memory, spec.limits.pids, spec.limits.cpu_rate)
        seccomp = filter_fd(self.seccomp)
        ours: list[int] = []  # the executor's ends of the hold pipes
        theirs = [seccomp]  # fds bubblewrap gets
        hold = None
        if spec.network:
            info_r, info_w = os.pipe()
            block_r, block_w = os.pipe()
            ours, hold = [info_r, block_w], Hold(info_w, block_r)
            theirs += [info_w, block_r]
            etc = self._net_etc
        argv = bwrap_argv(self.bwrap, spec, etc, uid, gid, self.tmp_size,
                          seccomp_fd=seccomp, hold=hold)
        try:
            proc = subprocess.Popen(
                argv, stdin=stdin, stdout=stdout, stderr=stderr, env={},
                cwd="/", start_new_session=True, pass_fds=tuple(theirs),
                preexec_fn=child_setup(cgroup.procs_files, spec.limits, uid, gid))
        except (OSError, subprocess.SubprocessError) as exc:
            cgroup.remove()
            for fd in ours:
                os.close(fd)
            raise SandboxUnavailable(f"cannot start bwrap: {exc}") from exc
        finally:
            for fd in theirs:
                os.close(fd)
        proc.returncode = 0  # reaped by the core (os.wait4); keeps Popen from waiting again
        cores = os.path.join(spec.workdir, spec.cwd)  # a core lands in the step's own cwd
        started = BwrapProcess(proc.pid, cgroup, cores if spec.limits.core else None)
        if not ours:
            return started
        return self._connect(started, ours[0], ours[1])

    def _connect(self, started: BwrapProcess, info: int, block: int) -> BwrapProcess:
        """Attach the network to a held step and let it go; on failure kill it, reap it and
        raise SandboxUnavailable."""
        network = StepNetwork(self.network, self.uid, self.gid)
        started.network = network
        try:
            network.attach(read_info(info, time.monotonic() + READY_SECONDS))
            os.write(block, b"1")
        except (SandboxUnavailable, OSError, subprocess.SubprocessError) as exc:
            started.release()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(started.pid, 0)
            raise SandboxUnavailable(f"cannot give the step its network: {exc}") from exc
        finally:
            os.close(info)
            os.close(block)
        return started


def check_bwrap(sandbox: BwrapSandbox | None = None) -> BwrapSandbox:
    """Open (or probe) a BwrapSandbox and run a trivial step in it; SandboxUnavailable if
    bubblewrap, user namespaces or cgroups do not work here."""
    box = sandbox or BwrapSandbox()
    workdir = tempfile.mkdtemp(prefix="khala-check-")
    try:
        os.chmod(workdir, 0o755)
        box.prepare_workdir(workdir)
        spec = RunSpec(argv=["/bin/sh", "-c", "echo ok > probe && cat probe"], workdir=workdir,
                       limits=Limits(wall_time=10, memory=64 * MIB, pids=16))
        outcome = box.run(spec, threading.Event())
    finally:
        remove_tree(workdir)
    if outcome.report.reason != Reason.OK or outcome.stdout != b"ok\n":
        if sandbox is None:
            box.close()
        detail = outcome.detail or outcome.stderr.decode(errors="replace").strip()
        raise SandboxUnavailable(f"bubblewrap does not work here: {detail or outcome.report}")
    return box
