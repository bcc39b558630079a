"""What names a stored file (its SHA-256 in lowercase hex, and its size) and the unit it travels
in. Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from khala.errors import InvalidInput

#: Bytes of one chunk: what one upload or read call carries at most, and what the MongoDB
#: backend keeps per GridFS chunk document. Small against `rpc_max_message` (64 MiB), large
#: enough that a 500 MB file is 500 calls.
CHUNK = 1024 * 1024
DIGEST_RE = re.compile(r"\A[0-9a-f]{64}\Z")
#: The digest of no bytes: an empty file needs no upload and no fetch.
EMPTY = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class FileRef:
    """A stored file: the SHA-256 of its bytes and their number."""

    sha256: str
    size: int


def valid_digest(value: object) -> bool:
    return isinstance(value, str) and DIGEST_RE.match(value) is not None


def check_digest(value: object, what: str = "sha256") -> str:
    """`value` if it is a digest (64 lowercase hex characters), else InvalidInput."""
    if not valid_digest(value):
        raise InvalidInput(f"{what} must be 64 lowercase hex characters (a SHA-256)")
    return str(value)


def digest_of(chunks: Iterable[bytes]) -> FileRef:
    """The reference of the bytes `chunks` yield, read once."""
    hasher, size = hashlib.sha256(), 0
    for chunk in chunks:
        hasher.update(chunk)
        size += len(chunk)
    return FileRef(hasher.hexdigest(), size)


def chunks_of(size: int, chunk: int = CHUNK) -> list[tuple[int, int]]:
    """The (offset, length) of each chunk of a file of `size` bytes, in order."""
    return [(offset, min(chunk, size - offset)) for offset in range(0, size, chunk)]
