"""The init's runtime: the host's Python, started in a warm box whatever its root holds.

A warm box's init (`box_init.py`) is a Python program, but the box's root may be an image with
no Python at all, or with another C library. So the init uses none of the root's programs or
libraries: it runs the executor host's own interpreter through the host's dynamic loader with
the host's libraries, all from the host's `/usr`, which the box has read-only on `/dev/shm`
only while the init starts:

1. bwrap binds the pool's read-only bind of the host's `/usr` over the box's `/dev/shm` stage
   and starts the loader as pid 1 — no program of the root runs before the init:
   `/dev/shm/lib/…/ld-linux….so --inhibit-cache --library-path /dev/shm/lib/… /dev/shm/bin/
   python3.X -I -S -B <init source> …` (the loader ignores the root's `/etc/ld.so.cache` and
   its libraries; Python finds its standard library next to itself, under `/dev/shm/lib`);
2. its environment (`ENV`) keeps the C library and Python from reading the root's files: the C
   locale (no locale files, no coercion to C.UTF-8), a time zone given by value, locale and
   zone directories in the lent tree. The one file the loader still reads from the root is
   `/etc/ld.so.preload`: a root that has one (`preloads`) gets no warm boxes;
3. once the init says it is ready (it imported, and ran once, everything it will use; its
   credentials name its pid), the executor unmounts the lent tree inside the box's mount
   namespace (`withdraw`, from a forked child that enters it): `/dev/shm` is the stage again,
   where each step gets its fresh tmpfs, and no step ever sees the interpreter. The init keeps
   running from the memory it mapped.
"""

from __future__ import annotations

import ctypes
import os
import posixpath
import struct
import sys
from dataclasses import dataclass

from khala.errors import SandboxUnavailable
from khala.images.tarball import resolves

HOST_USR = "/usr"
#: where the host's /usr is in the box while its init starts (the /dev/shm stage: empty until
#: the first step's tmpfs is mounted on it)
INSIDE = "/dev/shm"
#: the init's environment: nothing of it reads the root's files (see above)
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC0",
       "TZDIR": INSIDE + "/share/zoneinfo", "LOCPATH": INSIDE + "/lib/locale"}
PRELOAD = "etc/ld.so.preload"
PT_INTERP = 3
CLONE_NEWNS = 0x00020000
MNT_DETACH = 2


@dataclass(frozen=True)
class Runtime:
    """The host's interpreter and its loader and library directory, all under /usr."""

    python: str
    loader: str
    libdir: str

    def inside(self, path: str) -> str:
        return posixpath.join(INSIDE, os.path.relpath(path, HOST_USR))

    def argv(self, source_fd: int, sock_fd: int, stem: list[str]) -> list[str]:
        """The box's pid 1: the init (its source read from `source_fd`, speaking on
        `sock_fd`, making stems that exec `stem`), through the host's loader."""
        return [self.inside(self.loader), "--inhibit-cache", "--library-path",
                self.inside(self.libdir), self.inside(self.python), "-I", "-S", "-B",
                f"/proc/self/fd/{source_fd}", str(sock_fd), *stem]


def under_usr(path: str) -> bool:
    return path.startswith(HOST_USR + "/")


def elf_interpreter(data: bytes) -> str:
    """The program interpreter (PT_INTERP) named by a 64-bit little-endian ELF header in
    `data` (its first pages); ValueError when there is none."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    size, count = struct.unpack_from("<HH", data, 0x36)
    for index in range(count):
        at = phoff + index * size
        kind, = struct.unpack_from("<I", data, at)
        if kind == PT_INTERP:
            offset, = struct.unpack_from("<Q", data, at + 8)
            length, = struct.unpack_from("<Q", data, at + 32)
            return data[offset:offset + length].rstrip(b"\0").decode()
    raise ValueError("no program interpreter")


def find_runtime() -> Runtime:
    """The executor's Python 3 and its loader, both under /usr (SandboxUnavailable if not)."""
    python = ""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        real = os.path.realpath(candidate)
        if under_usr(real) and os.access(real, os.X_OK):
            python = real
            break
    if not python:
        raise SandboxUnavailable("warm sandboxes need a python3 under /usr (it runs their init)")
    try:
        with open(python, "rb") as fh:
            loader = os.path.realpath(elf_interpreter(fh.read(64 * 1024)))
    except (OSError, ValueError, UnicodeDecodeError, struct.error) as exc:
        raise SandboxUnavailable(f"cannot find the dynamic loader of {python}: {exc}") from exc
    if not under_usr(loader) or not os.access(loader, os.X_OK):
        raise SandboxUnavailable(f"warm sandboxes need {python}'s loader under /usr, not "
                                 f"{loader}")
    return Runtime(python, loader, os.path.dirname(loader))


def preloads(root: str) -> bool:
    """Whether the image at `root` has an /etc/ld.so.preload (its links followed as inside the
    image): the loader would load what it names into the init."""
    def link(rel: str) -> str | None:
        path = os.path.join(root, rel)
        return os.readlink(path) if os.path.islink(path) else None

    def exists(rel: str) -> bool:
        return os.path.lexists(os.path.join(root, rel))

    return resolves(PRELOAD, link, exists)


def withdraw(init_pid: int) -> str:
    """Unmount the lent tree from the mount namespace of the box whose init is `init_pid`
    (host pid), from a forked child that enters it (a threaded process cannot). "" when done,
    else why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        ns = os.open(f"/proc/{init_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return f"cannot open the box's mount namespace: {exc}"
    target = INSIDE.encode()
    try:
        child = os.fork()
        if child == 0:  # only system calls here: the parent has other threads
            code = 1
            if libc.setns(ns, CLONE_NEWNS) == 0:
                code = 0 if libc.umount2(target, MNT_DETACH) == 0 else 2
            os._exit(code)
        _, status = os.waitpid(child, 0)
    finally:
        os.close(ns)
    if os.waitstatus_to_exitcode(status) != 0:
        return ("cannot enter the box's mount namespace" if status >> 8 == 1 else
                f"cannot unmount {INSIDE} in the box")
    return ""
