"""The init of a warm sandbox: pid 1 of the sandbox's pid namespace, forking each run on request.

This file is not imported by the executor: its source runs *inside* the sandbox under the
executor host's Python, lent to the box only while the init starts (runtime.py: `<loader> …
python3 -I -S -B /proc/self/fd/<this file> <socket fd> <the stem's shell argv…>`), as the
sandbox user, under the seccomp filter, with only the standard library. Everything it will
use is imported (and run once) before it says `ready` (with its credentials: the executor
then unmounts the interpreter's files inside the box, by the init's pid). It
speaks to the executor over a SOCK_SEQPACKET socket (its executor side:
`khala.sandbox.warm.box`):

- `stem` → fork the next step's process, the stem, and answer `stem` with a socket of the
  stem's (SCM_RIGHTS). The stem sends `pid` on it with its credentials (the kernel translates
  the pid into the executor's namespace) and receives `fds` (SCM_RIGHTS: the step's stdin,
  stdout and stderr pipes and a control pipe). It starts its own session, resets its signal
  dispositions and execs the system shell with an empty environment, which writes `x` on the
  socket and waits for its script on the control pipe; the executor moves it into a fresh run
  cgroup meanwhile. When the step comes, the executor writes the script (khala/sandbox/
  shell.py: /work, rlimits, stdin, exactly the step's environment, exec the command).
  When the step ends, the init answers `status <wait status> <the 16 numbers of its wait4
  struct rusage>`. Making the stem ahead keeps the
  slow parts (moving a process into a cgroup waits for an RCU grace period; a woken copy of
  this Python process execs slowly) off the step's path.
- `reset` → reap every orphan, then answer `clean`, or `dirty <what>` if anything of the run is
  left that a remount cannot remove: a process, System V IPC objects, POSIX message queues.

Being pid 1 of its namespace protects it from the runs: the kernel drops every signal sent from
inside the namespace to its init unless it has a handler (it has none), and it is not dumpable,
so a run cannot read or write its memory (/proc/1/mem) or its file descriptors.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import resource  # noqa: F401 - os.wait4 imports it (its rusage) when first called
import signal
import socket
import struct
import sys
import time

PR_SET_DUMPABLE = 4
REAP_SECONDS = 2.0
FD_SPACE = socket.CMSG_SPACE(4 * 4)


def become_shell(fds: list[int], sock: socket.socket, shell: list[str]) -> None:
    """Become the stem's shell: the step's stdin, stdout and stderr and the control pipe as
    fds 0–3, this stem's socket as fd 4 (the shell says on it that it is up), a session of
    its own, default signals, an empty environment; exec `shell` (its argv, from the
    executor: khala/sandbox/warm/shell.py's STEM_ARGV). The step itself is the script the
    executor writes to the control pipe."""
    try:
        # Above every target first: a source numbered 0–4 would be overwritten before use.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in [*fds, sock.fileno()]]
        for target, fd in enumerate(high):
            os.dup2(fd, target)
        os.setsid()
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        os.execve(shell[0], shell, {})
    except OSError as exc:
        os.write(2, f"khala: cannot start the stem's shell: {exc.strerror}\n".encode())
    os._exit(127)


def stem(sock: socket.socket, shell: list[str]) -> None:
    """Fork the next step's process (the stem) with a socket of its own, hand that socket to
    the executor, wait for the stem to end and report its status. The stem says who it is
    (`pid`, with its credentials), takes its pipes from the executor and becomes the shell
    that waits for the step's script (the executor moves it into the run's cgroup
    meanwhile)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        sock.close()
        ours.close()
        creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
        theirs.sendmsg([b"pid"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
        message, ancillary, _, _ = theirs.recvmsg(64, FD_SPACE, socket.MSG_CMSG_CLOEXEC)
        fds = received_fds(ancillary)
        if message != b"fds" or len(fds) != 4:
            os._exit(0)  # not needed after all
        become_shell(fds, theirs, shell)
    theirs.close()
    fd = struct.pack("i", ours.fileno())
    sock.sendmsg([b"stem"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd)])
    ours.close()
    _, status, usage = os.wait4(pid, 0)
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
        message = sock.recv(64)
        if not message or message == b"exit":
            return
        if message == b"reset":
            found = residue()
            sock.send(b"dirty " + " ".join(found).encode() if found else b"clean")
        elif message == b"stem":
            stem(sock, shell)


def main() -> None:
    os.close(int(sys.argv[0].rsplit("/", 1)[1]))  # this source, /proc/self/fd/N: not for steps
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.set_inheritable(False)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # no handler: ignored from inside (pid 1)
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        sock.send(b"error prctl")
        return
    os.chdir("/")
    # Once now, whatever they load is loaded before the runtime is taken away.
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.wait4(child, 0)
    residue()
    creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())  # the executor needs its pid
    sock.sendmsg([b"ready"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
    serve(sock, sys.argv[2:])


if __name__ == "__main__":
    main()
