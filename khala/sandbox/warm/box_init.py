"""The init of a warm sandbox: pid 1 of the sandbox's pid namespace, starting each run on request.

This file is not imported by the executor: its source runs *inside* the sandbox under the
executor host's Python, lent to the box only while the init starts (runtime.py: `<loader> …
python3 -I -S -B /proc/self/fd/<this file> <socket fd> <the stem's shell argv…>`), as the
sandbox user, under the seccomp filter, with only the standard library. Everything it will
use is imported (and run once) before it says `ready` (with its credentials: the executor
then unmounts the interpreter's files inside the box, by the init's pid). It
speaks to the executor over a SOCK_SEQPACKET socket (its executor side:
`khala.sandbox.warm.box`):

- `stem` (with five fds, SCM_RIGHTS: the step's stdin, stdout and stderr pipes, a control pipe
  and a socket of the executor's) → start the next step's process, the stem: the system shell,
  started (`spawn_shell`: no copy of this Python process is made) with those five as fds 0–4,
  a session of its own, default signals and an empty environment. It answers `stem` with a
  pidfd of the stem (SCM_RIGHTS: the executor reads the stem's pid in its own namespace from
  it). The shell writes `x` on fd 4 and waits for its script on the control pipe; the
  executor moves it into a fresh run cgroup meanwhile. When the step comes, the executor
  writes the script (khala/sandbox/shell.py: /work, rlimits, stdin, exactly the step's
  environment, exec the command). When the step ends, the init answers `status <wait status>
  <the 16 numbers of its wait4 struct rusage>`. Making the stem ahead keeps the slow parts
  (moving a process into a cgroup waits for an RCU grace period; a shell's start-up) off the
  step's path. `error <why>` when the stem cannot be started.
- `reset` → reap every orphan, then answer `clean`, or `dirty <what>` if anything of the run is
  left that a remount cannot remove: a process, System V IPC objects, POSIX message queues.

Being pid 1 of its namespace protects it from the runs: the kernel drops every signal sent from
inside the namespace to its init unless it has a handler (it has none), and it is not dumpable,
so a run cannot read or write its memory (/proc/1/mem) or its file descriptors.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource  # noqa: F401 - os.wait4 imports it (its rusage) when first called
import signal
import socket
import struct
import subprocess
import sys
import time

PR_SET_DUMPABLE = 4
REAP_SECONDS = 2.0
STEM_FDS = 5  # the step's stdin, stdout, stderr, the control pipe, the executor's socket
FD_SPACE = socket.CMSG_SPACE(STEM_FDS * 4)
# The stems alive, by pid: a Popen object collected while its process runs would be polled
# (and could be reaped) by subprocess; each gets its return code once reaped here.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn_shell(fds: list[int], shell: list[str]) -> int:
    """Start the stem's shell (`shell`, from the executor: khala/sandbox/warm/shell.py's
    STEM_ARGV) with `fds` (stdin, stdout, stderr, control pipe, the executor's socket) as
    fds 0–4, a session of its own, default signals and an empty environment; its pid.

    subprocess forks with vfork here: no copy of this Python process is made, and its child
    runs no Python. (posix_spawn would be as cheap, but glibc's leaves the C library's own
    signals 32 and 33 ignored in the new program, and an ignored signal stays ignored across
    exec.)"""
    # Above every target first: a source numbered 0–4 would be overwritten before use.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds]
    for fd in fds:
        os.close(fd)
    try:
        os.dup2(high[3], 3)  # kept open by number (pass_fds): this init uses no fd below 10
        os.dup2(high[4], 4)
        child = subprocess.Popen(shell, executable=shell[0], stdin=high[0], stdout=high[1],
                                 stderr=high[2], pass_fds=(3, 4), env={}, cwd="/",
                                 start_new_session=True, restore_signals=True)
        CHILDREN[child.pid] = child  # never collected (and polled) by subprocess itself
        return child.pid
    finally:
        for fd in (*high, 3, 4):
            with contextlib.suppress(OSError):
                os.close(fd)


def stem(sock: socket.socket, shell: list[str], fds: list[int]) -> None:
    """Start the next step's process (the stem's shell) on the five fds the executor sent,
    hand the executor a pidfd of it, wait for it to end and report its status."""
    if len(fds) != STEM_FDS:
        for fd in fds:
            os.close(fd)
        sock.send(b"error the stem needs %d fds, not %d" % (STEM_FDS, len(fds)))
        return
    try:
        pid = spawn_shell(fds, shell)
    except OSError as exc:
        sock.send(f"error cannot start the stem's shell: {exc.strerror}".encode())
        return
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        CHILDREN.pop(pid).returncode = -signal.SIGKILL
        sock.send(f"error pidfd_open: {exc.strerror}".encode())
        return
    try:
        sock.sendmsg([b"stem"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                  struct.pack("i", pidfd))])
    finally:
        os.close(pidfd)
    _, status, usage = os.wait4(pid, 0)
    CHILDREN.pop(pid).returncode = os.waitstatus_to_exitcode(status)
    sock.send(b"status %d " % status + " ".join(repr(float(x)) for x in usage[:16]).encode())


def received_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(memoryview(data).cast("i"))
    return fds


def residue() -> list[str]:
    """What of the last run is left: reaps orphans for at most REAP_SECONDS first."""
    deadline = time.monotonic() + REAP_SECONDS
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        others = [p for p in os.listdir("/proc") if p.isdigit() and p != "1"]
        if not others or time.monotonic() >= deadline:
            break
        time.sleep(0.001)
    found = ["processes"] if others else []
    for kind in ("shm", "sem", "msg"):
        with open(f"/proc/sysvipc/{kind}") as fh:
            if len(fh.read().splitlines()) > 1:
                found.append("sysv-" + kind)
    if os.listdir("/dev/mqueue"):
        found.append("mqueue")
    return found


def serve(sock: socket.socket, shell: list[str]) -> None:
    while True:
        message, ancillary, _, _ = sock.recvmsg(64, FD_SPACE, socket.MSG_CMSG_CLOEXEC)
        fds = received_fds(ancillary)
        if message == b"stem":
            stem(sock, shell, fds)
            continue
        for fd in fds:
            os.close(fd)
        if not message or message == b"exit":
            return
        if message == b"reset":
            found = residue()
            sock.send(b"dirty " + " ".join(found).encode() if found else b"clean")


def main() -> None:
    os.close(int(sys.argv[0].rsplit("/", 1)[1]))  # this source, /proc/self/fd/N: not for steps
    given = int(sys.argv[1])
    sock = socket.socket(fileno=fcntl.fcntl(given, fcntl.F_DUPFD_CLOEXEC, 10))  # fds < 10:
    os.close(given)  # the stems' (spawn_shell)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # no handler: ignored from inside (pid 1)
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        sock.send(b"error prctl")
        return
    os.chdir("/")
    # Once now, whatever they load is loaded before the runtime is taken away.
    shell = sys.argv[2:]
    for fd in range(3, 10):
        with contextlib.suppress(OSError):
            os.close(fd)
    warm = [os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC) for _ in range(3)]
    child = spawn_shell([*warm, *(os.dup(fd) for fd in warm[:2])], [shell[0], "-c", ":"])
    os.close(os.pidfd_open(child))
    _, status, _ = os.wait4(child, 0)
    CHILDREN.pop(child).returncode = os.waitstatus_to_exitcode(status)
    residue()
    creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())  # the executor needs its pid
    sock.sendmsg([b"ready"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
    serve(sock, shell)


if __name__ == "__main__":
    main()
