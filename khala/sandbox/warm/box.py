"""A warm box: one bubblewrap sandbox built once and reused, clean, for many steps.

A cold step (`bwrap.py`) builds a whole bubblewrap sandbox — namespaces, about twenty mounts, a
seccomp filter — and throws it away: most of its cost. A `WarmBox` is that same sandbox built
once, with a small init (`box_init.py`, pid 1 of its pid namespace) that starts each step on
request, the way go-judge keeps pre-created containers. Per step it keeps what a cold step
has fresh:

- **cgroup**: each step still gets a fresh run cgroup, removed after it (everything left in it
  is killed). The box prepares it ahead: between two steps the init starts the next step's
  process (the "stem", a shell) and the executor moves the stem into a fresh cgroup — on
  cgroup v1 that move waits for an RCU grace period, milliseconds, the most expensive part of
  a step; when the step comes the stem execs the command. The prepared cgroup already holds
  the box's last step's limits (the next step's, mostly) and zeroed counters, so a step
  writes only the limits that differ; its run cgroup is removed after the result, in the
  background.
- **files**: `/work`, `/tmp` and `/dev/shm` inside are bound once to three "stage" directories
  of the host that are shared mount points; per step the executor mounts the task's work area
  (a bind, nosuid/nodev) and two fresh tmpfs on them, which propagate into the sandbox, and
  unmounts them afterwards. Nothing a step writes survives it: its files go with the mounts.
- **processes**: everything of the step is killed through its cgroup; the init then reaps the
  orphans and checks that it is alone in its pid namespace.
- **environment, rlimits, fds, signals, session**: the stem takes fresh pipes and its own
  session, resets its signals and execs the system shell with an empty environment; the step's
  script (`shell.py`) sets the rest; the init's own are never seen by a step.
- **IPC**: System V objects and POSIX message queues live in the sandbox's IPC namespace and
  would outlast a step; the init reports any, and the box is then thrown away (not reused).

This module is the box and its protocol with the init (`_send`, `_receive`; the messages are
described in `box_init.py`); the pool that keeps boxes, hands them to steps and resets and
prepares them on background workers is `pool.py`. Any failure of a box raises `WarmError`: the
pool then retires it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import signal
import socket
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from khala.errors import SandboxUnavailable
from khala.sandbox import workarea
from khala.sandbox.base import MIB, Limits, RunSpec
from khala.sandbox.bwrap import INSIDE_WORKDIR, child_setup, root_argv
from khala.sandbox.cgroups import CgroupTree, Limits3, RunCgroup, write_text
from khala.sandbox.fstree import remove_tree
from khala.sandbox.rusage import to_struct
from khala.sandbox.seccomp import filter_fd
from khala.sandbox.warm.runtime import ENV as RUNTIME_ENV
from khala.sandbox.warm.runtime import HOST_USR, Runtime, withdraw
from khala.sandbox.warm.runtime import INSIDE as RUNTIME_INSIDE
from khala.sandbox.warm.shell import READY, STEM_ARGV

log = logging.getLogger(__name__)


class Host(Protocol):
    """What a box needs of the pool that builds it (khala/sandbox/warm/pool.py's WarmSandbox):
    the bubblewrap binary, the sandbox user, its /etc, /tmp's size, the cgroup tree, the
    seccomp filter and the init's runtime."""

    bwrap: str
    uid: int
    gid: int
    tmp_size: int
    tree: CgroupTree
    seccomp: bytes
    runtime: Runtime  # the init's interpreter (runtime.py)
    runtime_dir: str  # the host's /usr, bound read-only (`bind_runtime`)

    @property
    def etc_dir(self) -> str: ...

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
MNT_DETACH = 2
START_SECONDS = 20.0  # the init's Python start-up, on a loaded host
ANSWER_SECONDS = 5.0  # any other answer of the init
BOX_MEMORY = 256 * MIB  # the box's own cgroup: bwrap and the init (a run is not counted there)
BOX_PIDS = 16
INIT_SOURCE = Path(__file__).with_name("box_init.py")
STAGES = ("work", "tmp", "shm")
WARM_PREFIX = "khala-warm-"  # + executor pid: the directory of its boxes' stages


class WarmError(Exception):
    """The warm box failed (not the step): retire it."""


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    if workarea._libc().mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                  flags, data.encode() or None) != 0:
        err = ctypes.get_errno()
        raise WarmError(f"mount {source} on {target}: {os.strerror(err)}")


def _unmount(target: str) -> None:
    if workarea._libc().umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise WarmError(f"unmount {target}: {os.strerror(err)}")


def mounts_under(path: str) -> list[str]:
    """Mount points at or under `path` in this mount namespace, deepest (latest) first."""
    prefix = path.rstrip("/") + "/"
    with open(workarea.MOUNTINFO) as fh:
        points = [line.split()[4].replace("\\040", " ") for line in fh]
    return [p for p in reversed(points) if p == path or p.startswith(prefix)]


def unmount_under(path: str) -> None:
    """Detach every mount at or under `path` (a bounded number of rounds); never raises."""
    for _ in range(64):
        found = mounts_under(path)
        if not found:
            return
        for point in found:
            with contextlib.suppress(WarmError):
                _unmount(point)


def remove_stale(parent: str) -> None:
    """Unmount and remove the stages of executors that died without closing their pool."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        pid = name.removeprefix(WARM_PREFIX).split("-", 1)[0]
        if not name.startswith(WARM_PREFIX) or not pid.isdigit() or workarea._running(int(pid)):
            continue
        path = os.path.join(parent, name)
        unmount_under(path)
        with contextlib.suppress(OSError):
            remove_tree(path)


def bind_runtime(target: str) -> None:
    """The host's /usr bound read-only (nosuid, nodev) at `target` (a directory of the pool's
    own): each box's init starts from a bind of it (`runtime.py`)."""
    _mount(HOST_USR, target, None, MS_BIND)
    _mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def warm_argv(sandbox: Host, stage: str, root: str | None, init: list[str],
              seccomp_fd: int) -> list[str]:
    """The bwrap command line of a warm box: the cold step's sandbox (`bwrap_argv`) on the host's
    root or the image `root`, with `init` as pid 1 (`Runtime.argv`), the stage directories at
    /work, /tmp and /dev/shm and an mqueue mount."""
    argv = [sandbox.bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--new-session", "--as-pid-1", "--uid", str(sandbox.uid),
            "--gid", str(sandbox.gid), "--hostname", "khala"]
    argv += root_argv(sandbox.etc_dir, root)
    argv += ["--proc", "/proc", "--dev", "/dev", "--mqueue", "/dev/mqueue",
             "--bind", os.path.join(stage, "shm"), "/dev/shm",
             "--bind", os.path.join(stage, "tmp"), "/tmp",
             "--bind", os.path.join(stage, "work"), INSIDE_WORKDIR,
             # the init's interpreter, over the /dev/shm stage until the init is ready
             "--ro-bind", sandbox.runtime_dir, RUNTIME_INSIDE, "--chdir", "/",
             "--remount-ro", "/dev", "--remount-ro", "/", "--cap-drop", "ALL",
             "--seccomp", str(seccomp_fd)]
    return argv + ["--", *init]


class Stem:
    """The next step's process, made ahead: the stem's shell waiting in its run cgroup for
    the step's script, and the executor's ends of the step's pipes."""

    def __init__(self, pid: int, pidfd: int, cgroup: RunCgroup) -> None:
        self.pid, self.pidfd, self.cgroup = pid, pidfd, cgroup
        self.control: int | None = None  # write end of the control pipe (the script)
        self.feed: int | None = None  # write end of the step's stdin pipe
        self.outputs: tuple[int, int] | None = None  # read ends of stdout and stderr

    @staticmethod
    def pipes(uid: int, gid: int) -> tuple[list[int], list[int]]:
        """The step's pipes: (the executor's ends: stdin to feed, stdout and stderr to read,
        the control pipe to write the script; the stem's ends: stdin, stdout, stderr, the
        control pipe). The control pipe is the sandbox user's: its shell opens it again
        (/dev/fd/3)."""
        made: list[int] = []
        try:
            for _ in range(4):
                made += os.pipe()
            os.fchown(made[6], uid, gid)
        except OSError as exc:
            for fd in made:
                os.close(fd)
            raise WarmError(f"cannot make a stem's pipes: {exc}") from exc
        return [made[1], made[2], made[4], made[7]], [made[0], made[3], made[5], made[6]]

    def take_pipes(self, ours: list[int]) -> None:
        """The executor's ends of the step's pipes (`pipes`), now the stem's to hand out."""
        self.feed, self.outputs, self.control = ours[0], (ours[1], ours[2]), ours[3]

    def send_script(self, script: bytes) -> None:
        """Write the step's script (it fits the empty pipe's buffer) and close the pipe."""
        assert self.control is not None
        fd, self.control = self.control, None
        try:
            view = memoryview(script)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def take_feed(self) -> int | None:
        fd, self.feed = self.feed, None
        return fd

    def drop_feed(self) -> None:
        """No live input: the step's stdin comes from its script's redirection."""
        if self.feed is not None:
            os.close(self.feed)
            self.feed = None

    def take_outputs(self) -> tuple[int, int]:
        assert self.outputs is not None
        fds, self.outputs = self.outputs, None
        return fds

    def close(self) -> None:
        """Close what the executor still holds of the stem (not its cgroup)."""
        for fd in (self.control, self.feed, *(self.outputs or ())):
            if fd is not None:
                os.close(fd)
        self.control = self.feed = self.outputs = None
        os.close(self.pidfd)


class WarmBox:
    """One warm sandbox: a running bwrap with its init, its three stage directories and, when
    prepared, the next step's stem in a fresh run cgroup."""

    def __init__(self, sandbox: Host, base: str, root: str | None = None) -> None:
        self.sandbox, self.root = sandbox, root  # root: an unpacked image, or None (the host's)
        self.stage = tempfile.mkdtemp(prefix="box-", dir=base)
        os.chmod(self.stage, 0o711)
        self._staged: list[str] = []  # stage mounts of the current step
        self.cgroup: RunCgroup | None = None  # the box's own: bwrap and the init
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.stem: Stem | None = None  # the next step's process, when prepared
        self.guess: Limits3 = (None, None, None)  # the last step's limits
        self.steps = 0  # steps begun in this box
        try:
            for name in STAGES:
                path = os.path.join(self.stage, name)
                os.mkdir(path, 0o755)
                _mount(path, path, None, MS_BIND)
                _mount("none", path, None, MS_SHARED)
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        """Start bwrap with the init as pid 1, on the host's interpreter lent to the box; take
        the interpreter away once the init is ready (runtime.py)."""
        box = self.sandbox
        self.cgroup = box.tree.create(BOX_MEMORY, BOX_PIDS)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # "ready" names the init
        self.sock = ours
        seccomp = filter_fd(box.seccomp)
        source = os.memfd_create("khala-warm-init", 0)
        try:
            os.write(source, INIT_SOURCE.read_bytes())
            init = box.runtime.argv(source, theirs.fileno(), STEM_ARGV)
            argv = warm_argv(box, self.stage, self.root, init, seccomp)
            # The executor's rlimits: each step sets its own in its process.
            setup = child_setup(self.cgroup.procs_files, Limits(
                file_size=None, open_files=None, stack=None, core=None), box.uid, box.gid)
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=dict(RUNTIME_ENV), cwd="/",
                start_new_session=True, pass_fds=(theirs.fileno(), seccomp, source),
                preexec_fn=setup)
        except (OSError, subprocess.SubprocessError) as exc:
            raise WarmError(f"cannot start a warm box: {exc}") from exc
        finally:
            theirs.close()
            os.close(seccomp)
            os.close(source)
        answer, _, pid = _receive(ours, START_SECONDS)
        # Off again: the stems' sockets come as SCM_RIGHTS alone (`_receive`'s room).
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
        if answer != b"ready" or pid is None:
            raise WarmError(f"the warm box's init did not start: {answer!r}")
        why = withdraw(pid)
        if why:
            raise WarmError(f"cannot take the interpreter back from a warm box: {why}")

    def prepare(self) -> None:
        """Fresh /tmp and /dev/shm, and the next step's stem in a fresh run cgroup."""
        assert self.sock is not None
        size = self.sandbox.tmp_size
        for name in ("tmp", "shm"):
            path = os.path.join(self.stage, name)
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
            self._staged.append(path)
        cgroup = self.sandbox.tree.create(None, None)
        stem: Stem | None = None
        try:
            stem = self._spawn_stem(cgroup)
            # Off the step's path: the last step's limits (the next one's likely), and the
            # counters from zero now that the stem's shell waits in its cgroup.
            cgroup.set_limits(*self.guess)
            cgroup.zero_counters()
        except BaseException:
            if stem is not None:
                stem.close()
            cgroup.remove()
            raise
        self.stem = stem

    def _spawn_stem(self, cgroup: RunCgroup) -> Stem:
        """Have the init start the next step's stem on fresh pipes and move it into `cgroup`
        while its shell starts (each move waits for an RCU grace period on cgroup v1: the two
        overlap); returns once the shell waits for its script."""
        assert self.sock is not None
        ours, theirs = Stem.pipes(self.sandbox.uid, self.sandbox.gid)
        told, tells = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stem: Stem | None = None
        try:
            try:
                self.sock.sendmsg([b"stem"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                               struct.pack("5i", *theirs, tells.fileno()))])
            except OSError as exc:
                raise WarmError(f"the warm box is gone: {exc}") from exc
            finally:
                for fd in theirs:
                    os.close(fd)
                tells.close()
            message, fds, _ = _receive(self.sock, ANSWER_SECONDS)
            if message != b"stem" or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                raise WarmError(f"unexpected answer of the warm box: {message!r}")
            try:
                pid = pidfd_pid(fds[0])
            except WarmError:
                os.close(fds[0])
                raise
            stem = Stem(pid, fds[0], cgroup)
            stem.take_pipes(ours)
            ours = []
            for path in cgroup.procs_files:
                write_text(path, str(stem.pid))
            message = _receive(told, ANSWER_SECONDS)[0]
            if message != READY:
                raise WarmError(f"the stem's shell did not start: {message!r}")
            return stem
        except BaseException:
            for fd in ours:
                os.close(fd)
            if stem is not None:
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(stem.pidfd, signal.SIGKILL)
                stem.close()
            raise
        finally:
            told.close()

    def begin(self, spec: RunSpec, script: str, feed: bool) -> tuple[Stem, int | None]:
        """Run the step in the prepared stem: its limits on the stem's cgroup, its work dir at
        /work, then its script (`shell.step_script`). Returns the stem (its pid, pidfd,
        cgroup and the read ends of the step's output pipes, now the caller's) and, when
        `feed`, the write end of its stdin pipe (the caller's too)."""
        assert self.stem is not None
        stem, self.stem = self.stem, None
        self.steps += 1
        try:
            self.guess = (spec.limits.memory, spec.limits.pids, spec.limits.cpu_rate)
            stem.cgroup.set_limits(*self.guess)  # writes only what the guess got wrong
            work = os.path.join(self.stage, "work")
            # Recursive: files bound read-only into the work dir (Sandbox.place_file) come along.
            _mount(spec.workdir, work, None, MS_BIND | MS_REC)
            self._staged.append(work)
            _mount("none", work, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
            stem.send_script(script.encode())
        except (OSError, SandboxUnavailable, WarmError) as exc:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(stem.pidfd, signal.SIGKILL)
            stem.close()
            stem.cgroup.remove()
            raise WarmError(f"cannot start a step in a warm box: {exc}") from exc
        if not feed:
            stem.drop_feed()
        return stem, stem.take_feed()

    def status(self) -> tuple[int, resource.struct_rusage]:
        """The wait status of the step's top process (it has exited) and its wait4 rusage."""
        assert self.sock is not None
        message = _receive(self.sock, ANSWER_SECONDS)[0]
        parts = message.split()
        try:
            if parts[:1] != [b"status"]:
                raise ValueError("not a status")
            return int(parts[1]), to_struct([float(x) for x in parts[2:]])
        except (ValueError, IndexError) as exc:
            raise WarmError(f"unexpected answer of the warm box: {message!r}") from exc

    def reset(self) -> None:
        """After a step (all its processes killed): unmount its files, check the init is alone
        and nothing is left in the IPC namespace. WarmError when the box must not be reused."""
        while self._staged:
            _unmount(self._staged.pop())
        assert self.sock is not None
        _send(self.sock, b"reset")
        answer = _receive(self.sock, ANSWER_SECONDS)[0]
        if answer != b"clean":
            raise WarmError(f"a step left residue: {answer.decode(errors='replace')}")

    def close(self) -> None:
        """Kill the box (bwrap, its init, a stem, anything left) and remove its stage; never
        raises."""
        if self.stem is not None:
            self.stem.cgroup.remove()
            self.stem.close()
            self.stem = None
        if self.cgroup is not None:
            self.cgroup.kill_all()
        if self.proc is not None:
            try:
                self.proc.wait(ANSWER_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("a warm box's bwrap did not exit")
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.sock is not None:
            self.sock.close()
        self._staged = []
        unmount_under(self.stage)
        remove_tree(self.stage)


def pidfd_pid(pidfd: int) -> int:
    """The pid, in this pid namespace, of the process `pidfd` refers to (its fdinfo)."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pid:"):
                    pid = int(line.split()[1])
                    if pid > 0:
                        return pid
                    break
    except (OSError, ValueError, IndexError) as exc:
        raise WarmError(f"cannot read a stem's pidfd: {exc}") from exc
    raise WarmError("the stem ended before it started")


def _send(sock: socket.socket, message: bytes) -> None:
    try:
        sock.send(message)
    except OSError as exc:
        raise WarmError(f"the warm box is gone: {exc}") from exc


def _receive(sock: socket.socket, timeout: float) -> tuple[bytes, list[int], int | None]:
    """The next message on `sock`, the fds it carried and the sender's pid if attached (only
    from the sandbox uid)."""
    sock.settimeout(timeout)
    try:
        message, ancillary, _, _ = sock.recvmsg(
            256, socket.CMSG_SPACE(struct.calcsize("3i")), socket.MSG_CMSG_CLOEXEC)
    except (TimeoutError, OSError) as exc:
        raise WarmError(f"no answer from the warm box: {exc}") from exc
    if not message:
        raise WarmError("the warm box's init is gone")
    pid, fds = None, []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", data[:struct.calcsize("3i")])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(memoryview(data).cast("i"))
    return message, fds, pid
