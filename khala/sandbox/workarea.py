"""The size-bounded work area of a run: a tmpfs of the run's disk limit mounted on its work dir.

The executor (root) mounts it in its own mount namespace before it lays the task's files out, and
unmounts it (lazily, so a busy mount cannot stall the slot) when the run ends; the files go with
it, whatever their number or depth. A tmpfs lives in memory: pages a step writes are charged to
that step's memory cgroup like those of /tmp. Work dirs are named `khala-run-<executor pid>-…`,
so mounts left by an executor that died are found and removed by the next one.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os

from khala.errors import SandboxUnavailable

PREFIX = "khala-run-"
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MNT_DETACH = 2
BYTES_PER_INODE = 16 * 1024  # inodes of a work area: one per 16 KiB of its size …
MIN_INODES = 16 * 1024  # … and at least this many
MOUNTINFO = "/proc/self/mountinfo"


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, opened once (opening it costs ≈ 15 µs: a step mounts several times)."""
    return ctypes.CDLL(None, use_errno=True)


def mount(workdir: str, size: int) -> None:
    """Mount a fresh tmpfs of `size` bytes (mode 0700: the run's alone; nosuid, nodev) on
    `workdir`."""
    inodes = max(MIN_INODES, size // BYTES_PER_INODE)
    options = f"size={size},nr_inodes={inodes},mode=0700".encode()
    flags = MS_NOSUID | MS_NODEV
    if _libc().mount(b"tmpfs", os.fsencode(workdir), b"tmpfs", flags, options) != 0:
        err = ctypes.get_errno()
        raise SandboxUnavailable(f"cannot mount the work area (a tmpfs): {os.strerror(err)}")


def bind_readonly(source: str, target: str) -> None:
    """Bind the host file `source` read-only (nosuid, nodev) on the existing file `target`
    inside a work area: the run reads the file itself, never a copy, and can change neither
    its bytes nor its owner or mode (the mount is read-only). It goes when the work area is
    unmounted (a lazy unmount takes the mounts under it along). Raises OSError."""
    libc = _libc()
    if libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot bind a file into the work area: {os.strerror(err)}")
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
    if libc.mount(None, os.fsencode(target), None, flags, None) != 0:
        err = ctypes.get_errno()
        libc.umount2(os.fsencode(target), MNT_DETACH)
        raise OSError(err, f"cannot make a bound file read-only: {os.strerror(err)}")


def unmount(workdir: str) -> None:
    """Detach the work area's tmpfs from `workdir`, if one is mounted there."""
    if _libc().umount2(os.fsencode(workdir), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: nothing mounted there
            raise OSError(err, f"cannot unmount the work area: {os.strerror(err)}")


def stale_mounts(mountinfo: str, alive: set[int] | None = None) -> list[str]:
    """Mount points of work areas whose executor (pid in the name) is gone. Pure but for the
    liveness check of pids not in `alive`."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        name = os.path.basename(point)
        pid = name.removeprefix(PREFIX).split("-", 1)[0]
        if not name.startswith(PREFIX) or not pid.isdigit():
            continue
        if alive is not None and int(pid) in alive:
            continue
        if alive is None and _running(int(pid)):
            continue
        found.append(point)
    return found


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale() -> None:
    """Unmount and remove the work areas of executors that died mid-task."""
    try:
        with open(MOUNTINFO) as fh:
            text = fh.read()
    except OSError:
        return
    for point in stale_mounts(text):
        try:
            unmount(point)
            os.rmdir(point)
        except OSError:
            continue
