"""The init's runtime: the host's Python, started in a warm box whatever its root holds.

A warm box's init (`box_init.py`) is a Python program, but the box's root may be an image with
no Python at all, or with another C library. So the init never uses the root's files: it runs
the executor host's own interpreter, started through the host's dynamic loader with the host's
libraries, all from the host's `/usr`, which is mounted (read-only) on the box's `/tmp` only
while the init starts:

1. the box's pid 1 is first the root's `/bin/sh` (every root has one: images are refused
   without it), which says on its stdout that the sandbox is built and waits on its stdin;
2. the executor then binds the host's `/usr` on the box's `/tmp` stage, from outside (the
   mount propagates in, as a step's own mounts do), and lets the shell go on;
3. the shell execs the loader: `/tmp/…/ld-linux….so --inhibit-cache --library-path /tmp/…
   /tmp/bin/python3.X -I -S -B <init source> …` (the loader ignores the root's `/etc/ld.so.*`
   and `/lib`; Python finds its standard library next to itself, under `/tmp/lib`);
4. once the init says it is ready (it imported everything it will ever use), the executor
   unmounts `/usr` from the stage, and the propagation takes it out of the box: no step ever
   sees it. The init keeps running from the memory it mapped.

Pure apart from reading the interpreter's ELF header.
"""

from __future__ import annotations

import os
import posixpath
import struct
import sys
from dataclasses import dataclass

from khala.errors import SandboxUnavailable

HOST_USR = "/usr"
#: where the host's /usr is in the box while its init starts (the /tmp stage: empty until the
#: first step's tmpfs is mounted on it)
INSIDE = "/tmp"
#: the gate, the box's pid 1 until the init starts: says "u" (the sandbox is built), waits for
#: a line, then execs the init with /dev/null as its stdin and stdout
GATE = 'printf u && read -r _ || exit 1; exec </dev/null >/dev/null; exec "$@"'
PT_INTERP = 3


@dataclass(frozen=True)
class Runtime:
    """The host's interpreter and its loader and library directory, all under /usr."""

    python: str
    loader: str
    libdir: str

    def inside(self, path: str) -> str:
        return posixpath.join(INSIDE, os.path.relpath(path, HOST_USR))

    def argv(self, source_fd: int, sock_fd: int, stem: list[str]) -> list[str]:
        """The box's pid 1: the gate, which becomes the init (its source read from
        `source_fd`, speaking on `sock_fd`, making stems that exec `stem`)."""
        return ["/bin/sh", "-c", GATE, "khala-gate", self.inside(self.loader), "--inhibit-cache",
                "--library-path", self.inside(self.libdir), self.inside(self.python),
                "-I", "-S", "-B", f"/proc/self/fd/{source_fd}", str(sock_fd), *stem]


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
