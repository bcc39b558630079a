"""An image's tar: checked when it is imported, unpacked by each executor into a private
directory. Pure apart from reading the tar and writing under the destination.

What a tar may hold (docs/images.md, "What an image may hold"):
- regular files, directories, symlinks (any target: inside the sandbox a link resolves within
  the image's root) and hard links to an earlier member;
- no member named by an absolute path or through `..` (refused: the whole import fails);
- no member that would land outside the destination through a symlink unpacked before it
  (refused when unpacked);
- device nodes and FIFOs are dropped (a sandbox has its own /dev); setuid, setgid and sticky
  bits and group/other write bits are cleared; every file is root's (uid 0, gid 0) whatever
  the tar says, so nothing in an image belongs to the user steps run as.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from khala.errors import InvalidInput

#: Directories a sandbox mounts over (its /proc, /dev, /tmp, work dir, generated /etc): made
#: in an unpacked image when it has none, so bubblewrap finds a mount point in a read-only root.
MOUNT_POINTS = ("proc", "dev", "tmp", "work", "etc")
#: Files of /etc a sandbox binds its generated ones over (khala/sandbox/etc.py GENERATED_ETC):
#: made empty when missing, replaced when a symlink (a mount on it would follow it).
MOUNT_FILES = ("passwd", "group", "hosts", "hostname", "resolv.conf")
#: What a step's command needs at least: the relay shell (khala/sandbox/bwrap.py).
REQUIRED = ("bin/sh",)
MAX_MEMBERS = 1_000_000


@dataclass
class TarSummary:
    members: int = 0  # kept (dropped device nodes and FIFOs not counted)
    dropped: int = 0
    bytes: int = 0  # of regular files, unpacked


def _unsafe_name(name: str) -> bool:
    parts = name.split("/")
    return name.startswith("/") or ".." in parts


def check_member(member: tarfile.TarInfo) -> bool:
    """Whether `member` is kept (False: dropped). InvalidInput when the tar is refused."""
    if _unsafe_name(member.name):
        raise InvalidInput(f"the image tar names {member.name!r}: absolute paths and '..' are "
                           "refused")
    if member.islnk() and _unsafe_name(member.linkname):
        raise InvalidInput(f"the image tar's hard link {member.name!r} points at "
                           f"{member.linkname!r}: absolute paths and '..' are refused")
    if member.ischr() or member.isblk() or member.isfifo():
        return False
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise InvalidInput(f"the image tar holds {member.name!r} of a kind Khala does not "
                           "unpack (regular files, directories, symlinks and hard links only)")
    return True


def _open_tar(source: str | BinaryIO) -> tarfile.TarFile:
    if isinstance(source, str):
        return tarfile.open(source, "r:*")
    source.seek(0)
    return tarfile.open(fileobj=source, mode="r:*")


def check_tar(source: str | BinaryIO, max_bytes: int) -> TarSummary:
    """Read the whole tar (plain, gzip, bzip2 or xz; a path or an open file, read from its
    start) and check every member. InvalidInput for a file that is no tar, an unsafe member,
    no /bin/sh, or more than `max_bytes` of files."""
    summary = TarSummary()
    links: dict[str, str | None] = {}  # kept member → its symlink target (None: not a link)
    try:
        with _open_tar(source) as tar:
            for member in tar:
                if summary.members + summary.dropped >= MAX_MEMBERS:
                    raise InvalidInput(f"the image tar has more than {MAX_MEMBERS} members")
                if not check_member(member):
                    summary.dropped += 1
                    continue
                summary.members += 1
                summary.bytes += member.size if member.isfile() else 0
                links[posixpath.normpath(member.name)] = (
                    member.linkname if member.issym() else None)
                if summary.bytes > max_bytes:
                    raise InvalidInput(f"the image's files are more than {max_bytes} bytes")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidInput(f"not a readable tar: {exc}") from exc
    missing = [f"/{n}" for n in REQUIRED if not resolves(n, links.get, lambda p: p in links)]
    if missing:
        raise InvalidInput(f"the image has no {', '.join(missing)} (a step's command starts "
                           "with it)")
    return summary


def resolves(name: str, link: Callable[[str], str | None],
             exists: Callable[[str], bool]) -> bool:
    """Whether `name` (relative to an image's root) names something there once symlinks are
    followed as inside the image (an absolute target from its root). `link(path)`: the
    target when `path` is a symlink, else None."""
    pending, done, hops = [p for p in name.split("/") if p], "", 0
    while pending:
        part = pending.pop(0)
        here = posixpath.normpath(posixpath.join(done, part)).lstrip("/")
        if here.startswith(".."):
            here = ""
        target = link(here) if here else None
        if target is None:
            if here and not exists(here):
                return False
            done = here
            continue
        hops += 1
        if hops > 40:
            return False
        pending = [p for p in target.split("/") if p] + pending
        done = "" if target.startswith("/") else done
    return True


def _disk_link(root: str) -> Callable[[str], str | None]:
    def link(rel: str) -> str | None:
        path = os.path.join(root, rel)
        return os.readlink(path) if os.path.islink(path) else None
    return link


def _filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    if not check_member(member):
        return None
    try:
        kept = tarfile.tar_filter(member, dest)  # no escape through links; high bits cleared
    except tarfile.FilterError as exc:
        raise InvalidInput(f"the image tar's {member.name!r} is refused: {exc}") from exc
    return kept.replace(uid=0, gid=0, uname="root", gname="root", deep=False)


def unpack(path: str, dest: str, max_bytes: int) -> int:
    """Unpack the tar at `path` into the empty directory `dest` (as the checks above say) and
    make the mount points a sandbox needs; returns the bytes of its files. InvalidInput for a
    tar that is refused, or larger than `max_bytes`."""
    summary = check_tar(path, max_bytes)
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(dest, numeric_owner=True, filter=_filter)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidInput(f"cannot unpack the image: {exc}") from exc
    for name in MOUNT_POINTS:
        target = os.path.join(dest, name)
        if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
            raise InvalidInput(f"the image's /{name} is not a directory (a sandbox mounts "
                               "its own there)")
        os.makedirs(target, 0o755, exist_ok=True)
    for name in MOUNT_FILES:
        target = os.path.join(dest, "etc", name)
        if os.path.islink(target):
            os.unlink(target)
        if not os.path.lexists(target):
            with open(target, "w"):
                pass
            os.chmod(target, 0o644)
        elif not os.path.isfile(target):
            raise InvalidInput(f"the image's /etc/{name} is not a file (a sandbox mounts its "
                               "own there)")
    if not resolves("bin/sh", _disk_link(dest), lambda rel: os.path.lexists(
            os.path.join(dest, rel))):
        raise InvalidInput("the image has no /bin/sh")
    os.chmod(dest, 0o755)
    return summary.bytes
