"""What ties `khala up`'s nodes to it: they die with it, and one cluster holds a data dir.

- `die_with_parent`: a preexec function by which the kernel sends the child SIGTERM when its
  parent dies, however it dies (`kill -9` included): `prctl(PR_SET_PDEATHSIG)`. The request is
  made after fork, so a parent that died before it would never signal: the child then checks
  that its parent is still the one that forked it, and exits if not. The signal follows the
  *thread* that forked the child, so children must be started from a thread that lives as long
  as the parent (`khala up` starts them from its main thread).
- `DataDirLock`: an exclusive `flock` on `<data dir>/khala.lock`, held by `khala up` and passed
  to every node it starts, so the lock is free only once the last of them has exited: a second
  cluster on the same data dir is refused, even while the nodes of a killed one still stop.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
from collections.abc import Callable

from khala.errors import ConfigError

PR_SET_PDEATHSIG = 1
LOCK_NAME = "khala.lock"
ORPHAN_EXIT = 70  # the child found its parent gone before it could ask to die with it


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A preexec function: `sig` to the child when the process calling this dies."""
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child only calls it

    def setup() -> None:
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(ORPHAN_EXIT)
        if os.getppid() != parent:  # the parent died before the request: no signal will come
            os._exit(ORPHAN_EXIT)

    return setup


class DataDirLock:
    """The exclusive lock of one data dir (`acquire` raises ConfigError when it is held)."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, LOCK_NAME)
        self.fd = -1

    def acquire(self) -> int:
        """Take the lock and write our pid in it; returns the fd to pass on to children."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ConfigError(f"cannot lock {self.path}: {exc}") from exc
            raise ConfigError(
                f"the data dir {os.path.dirname(self.path)} is in use by a running cluster "
                f"(khala up pid {holder}, or nodes it started that are still stopping): stop "
                "it first, or give this one another --data-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
