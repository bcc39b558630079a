"""The bubblewrap backend: namespaces + a fresh cgroup + rlimits for every step.

Each run:
1. creates a fresh cgroup (memory incl. swap, pids) — `khala.sandbox.cgroups`;
2. forks; the child (still root) writes its own pid into the cgroup, sets the rlimits, drops to
   the sandbox uid/gid and execs bwrap, so bwrap and every descendant are counted and limited;
3. bwrap unshares every namespace (user, pid, net, ipc, uts, mount, cgroup), forbids nested user
   namespaces, binds /usr (and the /bin, /lib… links) and an allow-list of /etc read-only, a fresh
   /proc and /dev, a size-limited private /tmp and the work dir read-write at /work (the cwd);
4. waits on a pidfd with the wall-clock deadline, checking cancel, the output caps and the
   cgroup's CPU time at short ticks;
5. kills everything left in the cgroup, reads the usage and removes the cgroup.
"""

from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

from khala.errors import SandboxUnavailable
from khala.model import Reason, StepReport
from khala.sandbox.base import MIB, Limits, RunOutcome, RunSpec, Sandbox
from khala.sandbox.capture import Capture
from khala.sandbox.cgroups import CgroupTree, RunCgroup, detect
from khala.sandbox.plain import classify

SANDBOX_UID = 65534
SANDBOX_GID = 65534
INSIDE_WORKDIR = "/work"
TICK_SECONDS = 0.02  # cancel / CPU / output-cap check interval while the child runs
TMP_SIZE = 64 * MIB
ETC_PREFIX = "khala-etc-"
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# Top-level host entries mirrored into the sandbox (symlinks stay symlinks).
SYSTEM_ENTRIES = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# /etc entries bound read-only when present: what loaders and runtimes need, no secrets.
ETC_ALLOW = (
    "alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
    "protocols", "services", "mime.types", "ssl", "ca-certificates", "os-release",
    "debian_version", "python3", "python3.11", "perl", "java-17-openjdk", "java-21-openjdk",
    "gcc", "bash.bashrc", "inputrc", "profile",
)


def remove_stale_etc(tmp: str) -> None:
    """Remove /etc copies left by executors that died without close() (named by their pid)."""
    for name in os.listdir(tmp):
        pid = name.removeprefix(ETC_PREFIX).split("-", 1)[0]
        if not name.startswith(ETC_PREFIX) or not pid.isdigit():
            continue
        path = os.path.join(tmp, name)
        try:
            if os.lstat(path).st_uid != os.geteuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed (apt-get install bubblewrap)")
    return path


def write_etc(directory: str, uid: int, gid: int, host_etc: str = "/etc") -> None:
    """Fill the sandbox's /etc: generated users and hosts, plus copies of the allow-listed host
    entries (symlinks kept, anything not readable by others skipped). Bound as one read-only
    mount: a single bind is much cheaper per run than one bind per file."""
    files = {
        "passwd": f"root:x:0:0:root:/:/usr/sbin/nologin\n"
        f"sandbox:x:{uid}:{gid}:sandbox:{INSIDE_WORKDIR}:/bin/sh\n",
        "group": f"root:x:0:\nsandbox:x:{gid}:\n",
        "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
        "hostname": "khala\n",
        "resolv.conf": "",
    }
    for name in ETC_ALLOW:
        copy_public(os.path.join(host_etc, name), os.path.join(directory, name))
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as fh:
            fh.write(text)
        os.chmod(os.path.join(directory, name), 0o644)
    os.chmod(directory, 0o755)


def copy_public(src: str, dst: str) -> None:
    """Copy `src` to `dst` if others may read it; directories recursively, symlinks as links."""
    try:
        st = os.lstat(src)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IROTH and st.st_mode & stat.S_IXOTH:
        os.mkdir(dst, 0o755)
        for name in os.listdir(src):
            copy_public(os.path.join(src, name), os.path.join(dst, name))
    elif stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IROTH:
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)


def bwrap_argv(bwrap: str, spec: RunSpec, etc_dir: str, uid: int, gid: int,
               tmp_size: int, host_root: str = "/") -> list[str]:
    """The bwrap command line of one run. Pure apart from looking at what `host_root` holds."""
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--uid", str(uid), "--gid", str(gid), "--hostname", "khala"]
    for entry in SYSTEM_ENTRIES:
        host = os.path.join(host_root, entry)
        if os.path.islink(host):
            argv += ["--symlink", os.readlink(host), "/" + entry]
        elif os.path.isdir(host):
            argv += ["--ro-bind", host, "/" + entry]
    argv += ["--ro-bind", etc_dir, "/etc", "--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(tmp_size), "--tmpfs", "/dev/shm",
             "--perms", "1777", "--size", str(tmp_size), "--tmpfs", "/tmp",
             "--bind", spec.workdir, INSIDE_WORKDIR, "--chdir", INSIDE_WORKDIR,
             "--remount-ro", "/dev", "--remount-ro", "/", "--cap-drop", "ALL", "--"]
    return argv + list(spec.argv)


def sandbox_env(spec: RunSpec) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOME": INSIDE_WORKDIR, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    env.update(spec.env)
    return env


def child_setup(procs_files: list[str], limits: Limits, uid: int, gid: int) -> Callable[[], None]:
    """The preexec function: join the cgroup, set rlimits, drop to the sandbox user."""
    pairs = [
        (resource.RLIMIT_CPU, limits.cpu_time and limits.cpu_time + 1),
        (resource.RLIMIT_FSIZE, limits.file_size),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_STACK, limits.stack),
        (resource.RLIMIT_CORE, 0),
    ]

    def setup() -> None:
        pid = str(os.getpid()).encode()
        for path in procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        for which, value in pairs:
            if value is not None:
                resource.setrlimit(which, (value, value))
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return setup


def decode_status(status: int, killed: bool) -> int:
    """bwrap exits 128+N when its child died of signal N; turn that back into a signal status
    (the shell's convention: a top process exiting 128+N cannot be told apart)."""
    if os.WIFEXITED(status) and not killed:
        code = os.WEXITSTATUS(status)
        if 128 < code < 128 + signal.NSIG:
            return code - 128  # a wait status "killed by signal N", no core
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


class BwrapSandbox(Sandbox):
    """Runs each step under bubblewrap in a fresh cgroup, as an unprivileged user."""

    name = "bwrap"

    def __init__(self, tree: CgroupTree | None = None, bwrap: str | None = None,
                 uid: int = SANDBOX_UID, gid: int = SANDBOX_GID, tmp_size: int = TMP_SIZE) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailable("the bwrap sandbox needs the executor to run as root "
                                     "(to create cgroups and drop to the sandbox user)")
        self.bwrap = bwrap or find_bwrap()
        self.tree = tree or detect()
        self.uid, self.gid, self.tmp_size = uid, gid, tmp_size
        remove_stale_etc(tempfile.gettempdir())
        self._etc = tempfile.mkdtemp(prefix=f"{ETC_PREFIX}{os.getpid()}-")
        write_etc(self._etc, uid, gid)

    def close(self) -> None:
        shutil.rmtree(self._etc, ignore_errors=True)

    def prepare_workdir(self, workdir: str) -> None:
        """Hand `workdir` (recursively, symlinks not followed) to the sandbox uid/gid."""
        if not traversable(workdir, self.uid):
            raise SandboxUnavailable(
                f"uid {self.uid} cannot reach {workdir}: every parent directory must be "
                "searchable by others (mode o+x, e.g. 0711)")
        os.lchown(workdir, self.uid, self.gid)
        os.chmod(workdir, 0o755)
        for root, dirs, files in os.walk(workdir):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), self.uid, self.gid)

    def run(self, spec: RunSpec, cancel: threading.Event) -> RunOutcome:
        start = time.monotonic()
        try:
            cgroup = self.tree.create(spec.limits.memory, spec.limits.pids)
        except SandboxUnavailable as exc:
            return internal_error(str(exc), start)
        try:
            outcome = self._run_in(cgroup, spec, cancel, start)
        finally:
            clean = cgroup.remove()
        if not clean:
            outcome.report.reason = Reason.INTERNAL_ERROR
            outcome.stderr += f"\nkhala: processes of cgroup {cgroup.name} survived\n".encode()
        return outcome

    def _run_in(self, cgroup: RunCgroup, spec: RunSpec, cancel: threading.Event,
                start: float) -> RunOutcome:
        limits = spec.limits
        argv = bwrap_argv(self.bwrap, spec, self._etc, self.uid, self.gid, self.tmp_size)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin, note = open_stdin(spec.stdin_path)
        try:
            proc = subprocess.Popen(
                argv, stdin=stdin, stdout=out_w, stderr=err_w, env=sandbox_env(spec),
                cwd="/", start_new_session=True,
                preexec_fn=child_setup(cgroup.procs_files, limits, self.uid, self.gid))
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(out_r)
            os.close(err_r)
            return internal_error(f"cannot start bwrap: {exc}", start)
        finally:
            os.close(stdin)
            os.close(out_w)
            os.close(err_w)
        overflow = threading.Event()
        out = Capture(out_r, limits.output, overflow)
        err = Capture(err_r, limits.output, overflow)
        if spec.signals is not None:
            spec.signals.attach(lambda sig: signal_step(cgroup, proc.pid, sig))
        try:
            flags, status = wait_child(proc, cgroup, limits, cancel, overflow, start)
        finally:
            if spec.signals is not None:
                spec.signals.detach()
        wall = time.monotonic() - start
        cgroup.kill_all()
        stdout, stderr = out.result(), err.result()
        if overflow.is_set():  # also when the writer exited before the wait noticed it
            flags["output"] = True
        report = self._report(cgroup, limits, status, flags, wall)
        return RunOutcome(stdout, note + stderr, report)

    def _report(self, cgroup: RunCgroup, limits: Limits, status: int | None,
                flags: dict[str, bool], wall: float) -> StepReport:
        if status is None:
            report = StepReport(wall_time=round(wall, 6), reason=Reason.INTERNAL_ERROR)
            report.time = round(cgroup.cpu_seconds(), 6)
            return report
        status = decode_status(status, killed=bool(flags))
        failed = not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
        if failed:
            flags["memory"] = cgroup.oom_killed()
            flags["pids"] = cgroup.pids_limit_hit()
        report = classify(status, limits, cgroup.cpu_seconds(), wall, flags)
        report.memory = cgroup.memory_peak()
        return report


def signal_step(cgroup: RunCgroup, bwrap_pid: int, signum: int) -> None:
    """Send a signal to the step's processes: every process of its cgroup but bwrap itself
    (the sandbox's pid 1 ignores it, as a namespace init without a handler does)."""
    for pid in cgroup.pids():
        if pid != bwrap_pid:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def open_stdin(path: str | None) -> tuple[int, bytes]:
    """Open the step's input as root without trusting the work dir: the previous step may have
    replaced it with a symlink to a host file or a FIFO. Only a regular file is used (the last
    component is not followed); anything else gives an empty input and a note on stderr."""
    if path is None:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), b""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        note = f"khala: input {os.path.basename(path)} not opened ({exc.strerror}); empty input\n"
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), note.encode()
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        note = f"khala: input {os.path.basename(path)} is not a regular file; empty input\n"
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), note.encode()
    os.set_blocking(fd, True)
    return fd, b""


def internal_error(message: str, start: float) -> RunOutcome:
    report = StepReport(wall_time=round(time.monotonic() - start, 6), reason=Reason.INTERNAL_ERROR)
    return RunOutcome(b"", f"khala: {message}\n".encode(), report)


def wait_child(proc: subprocess.Popen[bytes], cgroup: RunCgroup, limits: Limits,
               cancel: threading.Event, overflow: threading.Event,
               start: float) -> tuple[dict[str, bool], int | None]:
    """Wait for bwrap on a pidfd; on cancel, output cap, wall or CPU limit kill the cgroup.
    Returns the flags and the raw wait status (None if the child could not be reaped)."""
    flags: dict[str, bool] = {}
    deadline = start + limits.wall_time if limits.wall_time else None
    kill_deadline: float | None = None
    pidfd = os.pidfd_open(proc.pid)
    try:
        while True:
            now = time.monotonic()
            timeout = TICK_SECONDS
            if deadline is not None and not flags:
                timeout = max(0.0, min(timeout, deadline - now))
            if select.select([pidfd], [], [], timeout)[0]:
                break
            if kill_deadline is not None:
                if time.monotonic() >= kill_deadline:
                    return flags, None
                continue
            reason = stop_reason(cgroup, limits, cancel, overflow, deadline)
            if reason:
                flags[reason] = True
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                cgroup.kill_all(timeout=0.0)
                kill_deadline = time.monotonic() + 5.0
    finally:
        os.close(pidfd)
    _, status = os.waitpid(proc.pid, 0)
    proc.returncode = status  # reaped here; keeps Popen from waiting again
    return flags, status


def stop_reason(cgroup: RunCgroup, limits: Limits, cancel: threading.Event,
                overflow: threading.Event, deadline: float | None) -> str | None:
    if cancel.is_set():
        return "cancelled"
    if overflow.is_set():
        return "output"
    if deadline is not None and time.monotonic() >= deadline:
        return "wall"
    if limits.cpu_time is not None and cgroup.cpu_seconds() >= limits.cpu_time:
        return "cpu"
    return None


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
        shutil.rmtree(workdir, ignore_errors=True)
    if outcome.report.reason != Reason.OK or outcome.stdout != b"ok\n":
        if sandbox is None:
            box.close()
        detail = outcome.stderr.decode(errors="replace").strip()
        raise SandboxUnavailable(f"bubblewrap does not work here: {detail or outcome.report}")
    return box
