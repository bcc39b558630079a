"""Files on the wire (docs/rpc.md, "Files"): a FileRef both ways, raw chunks as they are."""

from __future__ import annotations

from typing import Any

from khala.errors import InvalidInput
from khala.files.refs import FileRef, check_digest
from khala.rpc import judicator_thrift as T


def file_ref_to_thrift(ref: FileRef) -> Any:
    return T.FileRef(sha256=ref.sha256, size=ref.size)


def file_ref_from_thrift(wire: Any, what: str = "file") -> FileRef:
    """InvalidInput for a missing reference, a malformed digest or a negative size."""
    if wire is None:
        raise InvalidInput(f"{what}: no file reference")
    size = wire.size if isinstance(wire.size, int) else -1
    if size < 0:
        raise InvalidInput(f"{what}: a file's size is 0 or more bytes")
    return FileRef(check_digest(wire.sha256, f"{what}.sha256"), size)
