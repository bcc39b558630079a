"""Warm sandboxes: bubblewrap sandboxes built once and reused, clean, for many steps.

A cold step (`bwrap.py`) builds a whole bubblewrap sandbox — namespaces, about twenty mounts, a
seccomp filter — and throws it away: most of its cost. A `WarmBox` is that same sandbox built
once, with a small init (`warm_init.py`, pid 1 of its pid namespace) that forks each step on
request, the way go-judge keeps pre-created containers. Per step it keeps what a cold step
has fresh:

- **cgroup**: each step still gets a fresh run cgroup, removed after it (everything left in it
  is killed). The box prepares it ahead: between two steps the init forks the next step's
  process (the "stem") and the executor moves the stem into a fresh cgroup — on cgroup v1 that
  move waits for an RCU grace period, milliseconds, the most expensive part of a step; when
  the step comes the stem execs the command. The prepared cgroup already holds the box's last
  step's limits (the next step's, mostly) and zeroed counters, so a step writes only the
  limits that differ; its run cgroup is removed after the result, in the background.
- **files**: `/work`, `/tmp` and `/dev/shm` inside are bound once to three "stage" directories
  of the host that are shared mount points; per step the executor mounts the task's work area
  (a bind, nosuid/nodev) and two fresh tmpfs on them, which propagate into the sandbox, and
  unmounts them afterwards. Nothing a step writes survives it: its files go with the mounts.
- **processes**: everything of the step is killed through its cgroup; the init then reaps the
  orphans and checks that it is alone in its pid namespace.
- **environment, rlimits, fds, signals, session**: set in the forked child from the request
  alone; the init's own are never seen by a step.
- **IPC**: System V objects and POSIX message queues live in the sandbox's IPC namespace and
  would outlast a step; the init reports any, and the box is then thrown away (not reused).

Resetting and preparing a box (removing the last run cgroup, unmounting, checking, forking and
moving the stem) happens on background workers (one per two boxes, at most one per CPU), off
the steps' path. Anything unexpected (no answer in time, a dirty
reset, a dead init) retires the box; the pool builds a replacement in the background, and a
step that finds no ready box within `WAIT_SECONDS` runs cold.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import queue
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from khala.errors import SandboxUnavailable
from khala.sandbox import workarea
from khala.sandbox.base import MIB, Limits, RunSpec
from khala.sandbox.bwrap import (
    INSIDE_WORKDIR,
    SYSTEM_ENTRIES,
    BwrapProcess,
    BwrapSandbox,
    child_setup,
    sandbox_env,
)
from khala.sandbox.cgroups import RunCgroup
from khala.sandbox.core import Process, rlimits
from khala.sandbox.fstree import remove_tree
from khala.sandbox.seccomp import filter_fd

log = logging.getLogger(__name__)

MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_SHARED = 2, 4, 32, 4096, 1 << 20
MNT_DETACH = 2
WAIT_SECONDS = 0.5  # a step waits this long for a box being prepared, then runs cold
START_SECONDS = 20.0  # the init's Python start-up, on a loaded host
ANSWER_SECONDS = 5.0  # any other answer of the init
BOX_MEMORY = 256 * MIB  # the box's own cgroup: bwrap and the init (a run is not counted there)
BOX_PIDS = 16
INIT_SOURCE = Path(__file__).with_name("warm_init.py")
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


def find_python() -> str:
    """A Python 3 under /usr (bound into the sandbox) for the init."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        real = os.path.realpath(candidate)
        if real.startswith("/usr/") and os.access(real, os.X_OK):
            return real
    raise SandboxUnavailable("warm sandboxes need a python3 under /usr (it runs their init)")


def warm_argv(sandbox: WarmSandbox, stage: str, python: str, source_fd: int, sock_fd: int,
              seccomp_fd: int) -> list[str]:
    """The bwrap command line of a warm box: the cold step's sandbox (`bwrap_argv`) with the
    init as pid 1, the stage directories at /work, /tmp and /dev/shm and an mqueue mount."""
    argv = [sandbox.bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--new-session", "--as-pid-1", "--uid", str(sandbox.uid),
            "--gid", str(sandbox.gid), "--hostname", "khala"]
    for entry in SYSTEM_ENTRIES:
        host = os.path.join("/", entry)
        if os.path.islink(host):
            argv += ["--symlink", os.readlink(host), "/" + entry]
        elif os.path.isdir(host):
            argv += ["--ro-bind", host, "/" + entry]
    argv += ["--ro-bind", sandbox.etc_dir, "/etc", "--proc", "/proc", "--dev", "/dev",
             "--mqueue", "/dev/mqueue",
             "--bind", os.path.join(stage, "shm"), "/dev/shm",
             "--bind", os.path.join(stage, "tmp"), "/tmp",
             "--bind", os.path.join(stage, "work"), INSIDE_WORKDIR, "--chdir", "/",
             "--remount-ro", "/dev", "--remount-ro", "/", "--cap-drop", "ALL",
             "--seccomp", str(seccomp_fd)]
    return argv + ["--", python, "-I", "-S", f"/proc/self/fd/{source_fd}", str(sock_fd)]


class WarmBox:
    """One warm sandbox: a running bwrap with its init, its three stage directories and, when
    prepared, the next step's stem in a fresh run cgroup."""

    def __init__(self, sandbox: WarmSandbox, base: str, python: str) -> None:
        self.sandbox = sandbox
        self.stage = tempfile.mkdtemp(prefix="box-", dir=base)
        os.chmod(self.stage, 0o711)
        self._staged: list[str] = []  # stage mounts of the current step
        self.cgroup: RunCgroup | None = None  # the box's own: bwrap and the init
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.stem: tuple[int, int, socket.socket, RunCgroup] | None = None  # pid, pidfd, …
        self.guess: tuple[int | None, int | None] = (None, None)  # the last step's limits
        try:
            for name in STAGES:
                path = os.path.join(self.stage, name)
                os.mkdir(path, 0o755)
                _mount(path, path, None, MS_BIND)
                _mount("none", path, None, MS_SHARED)
            self._start(python)
        except BaseException:
            self.close()
            raise

    def _start(self, python: str) -> None:
        box = self.sandbox
        self.cgroup = box.tree.create(BOX_MEMORY, BOX_PIDS)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        seccomp = filter_fd(box.seccomp)
        source = os.memfd_create("khala-warm-init", 0)
        try:
            os.write(source, INIT_SOURCE.read_bytes())
            argv = warm_argv(box, self.stage, python, source, theirs.fileno(), seccomp)
            # The executor's rlimits: each step sets its own in its process.
            setup = child_setup(self.cgroup.procs_files, Limits(file_size=None, open_files=None,
                                                                 stack=None), box.uid, box.gid)
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                cwd="/", start_new_session=True, pass_fds=(theirs.fileno(), seccomp, source),
                preexec_fn=setup)
        except (OSError, subprocess.SubprocessError) as exc:
            raise WarmError(f"cannot start a warm box: {exc}") from exc
        finally:
            theirs.close()
            os.close(seccomp)
            os.close(source)
        answer = _receive(ours, START_SECONDS)[0]
        if answer != b"ready":
            raise WarmError(f"the warm box's init did not start: {answer!r}")

    def prepare(self) -> None:
        """Fresh /tmp and /dev/shm, and the next step's stem in a fresh run cgroup."""
        assert self.sock is not None
        size = self.sandbox.tmp_size
        for name in ("tmp", "shm"):
            path = os.path.join(self.stage, name)
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
            self._staged.append(path)
        cgroup = self.sandbox.tree.create(None, None)
        try:
            _send(self.sock, b"stem")
            message, fds, _ = _receive(self.sock, ANSWER_SECONDS)
            if message != b"stem" or len(fds) != 1:
                raise WarmError(f"unexpected answer of the warm box: {message!r}")
            stem_sock = socket.socket(fileno=fds[0])
            stem_sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            message, _, pid = _receive(stem_sock, ANSWER_SECONDS)
            if message != b"pid" or pid is None:
                raise WarmError(f"unexpected answer of a stem: {message!r}")
            pidfd = os.pidfd_open(pid)
            for path in cgroup.procs_files:
                with open(path, "w") as fh:
                    fh.write(str(pid))
            # Off the step's path: the last step's limits (the next one's likely), and the
            # counters from zero now that the stem sits blocked in its cgroup.
            cgroup.set_limits(*self.guess)
            cgroup.zero_counters()
        except BaseException:
            cgroup.remove()
            raise
        self.stem = (pid, pidfd, stem_sock, cgroup)

    def begin(self, spec: RunSpec, stdin: int, stdout: int, stderr: int
              ) -> tuple[int, int, RunCgroup]:
        """Run the step in the prepared stem: its limits on the stem's cgroup, its work dir at
        /work, then the request. Returns the step's pid, a pidfd of it and its cgroup."""
        assert self.stem is not None
        pid, pidfd, stem_sock, cgroup = self.stem
        self.stem = None
        try:
            self.guess = (spec.limits.memory, spec.limits.pids)
            cgroup.set_limits(*self.guess)  # writes only what the guess got wrong
            work = os.path.join(self.stage, "work")
            _mount(spec.workdir, work, None, MS_BIND)
            self._staged.append(work)
            _mount("none", work, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
            request = {"argv": list(spec.argv), "env": sandbox_env(spec),
                       "rlimits": rlimits(spec.limits)}
            stem_sock.sendmsg([json.dumps(request).encode()],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                struct.pack("3i", stdin, stdout, stderr))])
        except (OSError, SandboxUnavailable, WarmError) as exc:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)
            cgroup.remove()
            raise WarmError(f"cannot start a step in a warm box: {exc}") from exc
        finally:
            stem_sock.close()
        return pid, pidfd, cgroup

    def status(self) -> int:
        """The wait status of the step's top process (it has exited)."""
        assert self.sock is not None
        message = _receive(self.sock, ANSWER_SECONDS)[0]
        if not message.startswith(b"status "):
            raise WarmError(f"unexpected answer of the warm box: {message!r}")
        return int(message.split()[1])

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
            _, pidfd, stem_sock, cgroup = self.stem
            cgroup.remove()
            os.close(pidfd)
            stem_sock.close()
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


class WarmProcess(BwrapProcess):
    """A step run by a warm box's stem: the status comes from the init, the usage and the kill
    from the step's own run cgroup, as for a cold step."""

    def __init__(self, pid: int, pidfd: int, cgroup: RunCgroup, box: WarmBox,
                 pool: WarmSandbox) -> None:
        super().__init__(pid, cgroup)
        self.pidfd, self.box, self.pool = pidfd, box, pool
        self.gone: bool | None = None  # the waiting kill's finding: no process left

    def open_pidfd(self) -> int:
        return self.pidfd  # opened before the step could run (and exit); the core closes it

    def reap(self) -> tuple[int, resource.struct_rusage | None]:
        try:
            return self.box.status(), None
        except WarmError as exc:
            raise OSError(str(exc)) from exc

    def signal(self, signum: int) -> None:
        """Every process of the run cgroup, the top one included (no bwrap in between; the
        box's init is not in it)."""
        for pid in self.cgroup.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self, wait: bool) -> None:
        if wait:
            self.gone = self.cgroup.kill_all()
        else:
            self.cgroup.kill_all(timeout=0.0)

    def release(self) -> bool:
        """Whether every process of the step is gone (the core's kill found none left, or a
        kill now); the empty run cgroup is removed on the pool's thread, off the step's path."""
        clean = self.gone if self.gone is not None else self.cgroup.kill_all()
        self.pool.give_back(self.box, clean, self.cgroup)
        return clean


class WarmSandbox(BwrapSandbox):
    """The bwrap sandbox with a pool of `size` warm boxes (two per slot let one be prepared
    while the other runs); a step that finds none ready in time, or whose box fails before the
    step started, runs cold."""

    name = "bwrap"

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.size = size
        self.python = find_python()
        remove_stale(tempfile.gettempdir())
        self.base = tempfile.mkdtemp(prefix=f"{WARM_PREFIX}{os.getpid()}-")
        os.chmod(self.base, 0o711)
        self._ready: list[WarmBox] = []
        self._changed = threading.Condition()
        # (a box to reset and prepare, or None: build one; a step's run cgroup to remove first)
        self._todo: queue.Queue[tuple[WarmBox | None, RunCgroup | None] | None] = queue.Queue()
        self._count = 0  # boxes alive: ready, running, being reset/prepared, being built
        self._closed = False
        # Several workers: preparing a box mostly waits (cgroup v1 moves wait for an RCU grace
        # period), so back-to-back steps of several slots are prepared side by side.
        self._workers = [threading.Thread(target=self._work, name=f"khala-warm-{n}", daemon=True)
                         for n in range(max(1, min(size // 2, os.cpu_count() or 1)))]
        for worker in self._workers:
            worker.start()
        for _ in range(size):
            self._todo.put((None, None))
        self._count = size
        with self._changed:  # the first box: open_sandbox checks the sandbox with it
            self._changed.wait_for(lambda: self._ready or self._count == 0 or self._closed,
                                   timeout=START_SECONDS + ANSWER_SECONDS)

    @property
    def etc_dir(self) -> str:
        return self._etc

    def _work(self) -> None:
        """A background worker: remove steps' run cgroups, build, reset and prepare boxes."""
        while True:
            item = self._todo.get()
            if item is None:  # close()
                return
            box, cgroup = item
            survived = cgroup is not None and not cgroup.remove()
            if self._closed:
                if box is not None:
                    box.close()
                continue
            building = box is None
            try:
                if survived:
                    raise WarmError("a process of its step survived in the run cgroup")
                if box is None:
                    box = WarmBox(self, self.base, self.python)
                else:
                    box.reset()
                box.prepare()
            except (WarmError, SandboxUnavailable, OSError) as exc:
                log.warning("a warm sandbox is retired (steps run cold meanwhile): %s", exc)
                if box is not None:
                    box.close()
                if building:  # no endless rebuilding when boxes cannot be built here
                    with self._changed:
                        self._count -= 1
                        self._changed.notify_all()
                else:
                    self._todo.put((None, None))  # a replacement
                continue
            with self._changed:
                self._ready.append(box)
                self._changed.notify_all()

    def give_back(self, box: WarmBox, clean: bool, cgroup: RunCgroup) -> None:
        """After a step: remove its run cgroup, reset and prepare the box in the background,
        or retire the box (`clean` False: some process of the step survived the kill)."""
        if clean:
            self._todo.put((box, cgroup))
            return
        log.warning("a warm sandbox is retired: processes of its step survived")
        box.close()
        self._todo.put((None, cgroup))  # a replacement, once the cgroup is gone

    def _take(self) -> WarmBox | None:
        with self._changed:
            self._changed.wait_for(lambda: self._ready or self._count == 0 or self._closed,
                                   timeout=WAIT_SECONDS)
            return self._ready.pop() if self._ready and not self._closed else None

    def start(self, spec: RunSpec, stdin: int, stdout: int, stderr: int) -> Process:
        box = self._take()
        if box is None:
            return super().start(spec, stdin, stdout, stderr)
        try:
            pid, pidfd, cgroup = box.begin(spec, stdin, stdout, stderr)
        except WarmError as exc:
            log.warning("a warm sandbox failed before its step started (it runs cold): %s", exc)
            self._todo.put((box, None))  # reset finds what is wrong, or prepares it again
            return super().start(spec, stdin, stdout, stderr)
        return WarmProcess(pid, pidfd, cgroup, box, self)

    def settle(self, timeout: float) -> bool:
        """Wait until no box is being built, reset or prepared (for checks); False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: len(self._ready) == self._count and self._todo.empty(), timeout=timeout)

    def owned(self) -> tuple[set[int], set[str], set[str]]:
        """What the pool itself holds now: its bwrap pids, mount points and cgroup dirs."""
        pids: set[int] = set()
        mounts: set[str] = set()
        cgroups: set[str] = set()
        with self._changed:
            boxes = list(self._ready)
        for box in boxes:
            if box.proc is not None:
                pids.add(box.proc.pid)
            mounts.update(os.path.join(box.stage, n) for n in STAGES)
            for cgroup in (box.cgroup, box.stem[3] if box.stem else None):
                if cgroup is not None:
                    cgroups.update(cgroup.dirs)
        return pids, mounts, cgroups

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for _ in self._workers:
            self._todo.put(None)
        for worker in self._workers:
            worker.join(START_SECONDS + 10 * ANSWER_SECONDS)
        with self._changed:
            boxes, self._ready = self._ready, []
        while not self._todo.empty():  # given back after the workers left
            item = self._todo.get_nowait()
            if item is not None:
                if item[1] is not None:
                    item[1].remove()
                if item[0] is not None:
                    boxes.append(item[0])
        for box in boxes:
            box.close()
        remove_tree(self.base)
        super().close()
