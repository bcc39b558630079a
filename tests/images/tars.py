"""Tars of root filesystems for the image tests, made here (never checked in): small ones by
hand (`make_tar`), and a tiny working root (`tiny_root`) assembled from the host's bash, the
libraries it loads and Debian's busybox-static, with a marker file only the image has."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable

MARKER = "/khala-image-marker"
MARKER_TEXT = "only in the image\n"
#: busybox applets the tiny root links (busybox-static, installed by scripts/install-deps.sh)
APPLETS = ("cat", "ls", "echo", "touch", "mkdir", "rm", "head", "id", "stat", "sleep", "true")


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644,
           link: str = "", uid: int = 0) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.uid = kind, mode, link, uid
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def make_tar(path: str, members: Iterable[tuple[tarfile.TarInfo, bytes]]) -> str:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def minimal(extra: Iterable[tuple[tarfile.TarInfo, bytes]] = ()) -> list[
        tuple[tarfile.TarInfo, bytes]]:
    """A root with a shell (a file named /bin/sh will do for the checks) and `extra`."""
    return [member("bin", tarfile.DIRTYPE, mode=0o755),
            member("bin/sh", data=b"#!not really\n", mode=0o755), *extra]


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            found.append(path)
    return found


def tiny_root(directory: str) -> str:
    """Fill `directory` with a working root filesystem: /bin/bash (and /bin/sh, the same) with
    the libraries it loads at their paths, busybox's applets, a marker file. Returns it."""
    os.makedirs(directory, exist_ok=True)
    for sub in ("bin", "etc", "tmp"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    bash = os.path.realpath("/bin/bash")
    shutil.copy2(bash, os.path.join(directory, "bin", "bash"))
    os.symlink("bash", os.path.join(directory, "bin", "sh"))
    for lib in _libraries(bash):
        target = os.path.join(directory, lib.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.realpath(lib), target)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox",
                 os.path.join(directory, "bin", "busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(directory, "bin", applet))
    with open(os.path.join(directory, MARKER.lstrip("/")), "w") as fh:
        fh.write(MARKER_TEXT)
    return directory


def tiny_tar(path: str, work: str) -> str:
    """The tiny root as a tar at `path` (built under `work`)."""
    root = tiny_root(os.path.join(work, "tiny-root"))
    with tarfile.open(path, "w") as tar:
        tar.add(root, arcname=".")
    return path
