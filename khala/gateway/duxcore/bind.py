"""A service's bind contents: an uploaded .tar (plain or gzip, bzip2, xz) made into the zip a
task's execute step unpacks into its work area's `data/` (docs/duxcore.md). Checked member by
member before anything is kept: only regular files and directories, relative names without
`..`, bounded in bytes and files (the task's size and the zip bounds of the limits policy).
Pure apart from reading the open file."""

from __future__ import annotations

import io
import posixpath
import stat
import tarfile
import zipfile
from typing import BinaryIO

from khala.errors import InvalidInput

CHUNK = 1 << 20


def _name(member: tarfile.TarInfo) -> str:
    name = member.name.removeprefix("./")
    if name.startswith("/") or "\\" in name or "\0" in name:
        raise InvalidInput(f"bind contents: {member.name!r} is not a relative name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"bind contents: {member.name!r} has a '..' component")
    return posixpath.join(*parts) if parts else ""


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.isfile():
        return "file"
    what = "a link" if member.issym() or member.islnk() else "a device or special file"
    raise InvalidInput(f"bind contents: {member.name!r} is {what}: only files and directories "
                       "are taken")


def tar_to_zip(fh: BinaryIO, max_bytes: int, max_files: int) -> tuple[bytes, int]:
    """(the zip, its number of files) of the tar in `fh`. InvalidInput for a tar that is
    unreadable, holds what a work area cannot, or is larger than `max_bytes` unpacked or as a
    zip, or has more than `max_files` members."""
    out = io.BytesIO()
    total = files = 0
    try:
        with tarfile.open(fileobj=fh, mode="r:*") as tar, \
                zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in tar:
                kind, name = _member_kind(member), _name(member)
                files += 1
                total += member.size
                if files > max_files or total > max_bytes:
                    raise InvalidInput(f"bind contents: more than {max_files} members or "
                                       f"{max_bytes} bytes")
                if not name:
                    continue
                _add(archive, tar, member, name, kind)
                if out.tell() > max_bytes:
                    raise InvalidInput(f"bind contents: larger than {max_bytes} bytes as a zip")
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise InvalidInput(f"bind contents: not a readable tar: {exc}") from exc
    return out.getvalue(), files


def _add(archive: zipfile.ZipFile, tar: tarfile.TarFile, member: tarfile.TarInfo, name: str,
         kind: str) -> None:
    if kind == "dir":
        info = zipfile.ZipInfo(name + "/")
        info.external_attr = (stat.S_IFDIR | 0o755) << 16
        archive.writestr(info, b"")
        return
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode below is read back
    info.external_attr = (stat.S_IFREG | (0o755 if member.mode & 0o111 else 0o644)) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    source = tar.extractfile(member)
    if source is None:
        raise InvalidInput(f"bind contents: {member.name!r} cannot be read")
    with source, archive.open(info, "w") as target:
        while chunk := source.read(CHUNK):
            target.write(chunk)
