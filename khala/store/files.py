"""The file side of the store: content-addressed files (SHA-256), written in chunks by uploads
that any judicator of the cluster may continue, read in chunks, kept while something refers to
them. Each backend's `Store` carries its `FileStore` as `store.files`: the SQLite backend keeps
the bytes in a directory beside its database file, the MongoDB backend in GridFS (so every
judicator sees them).

An upload declares its size and SHA-256 first (`begin`: nothing to send when the file is stored
already), then sends its chunks (`put`: chunk n at offset n × CHUNK, each CHUNK bytes but the
last; a chunk sent again replaces itself), then `end`s: the bytes are hashed as they are read
back and the file is kept only if they match, else the upload is dropped. No call holds more
than one chunk in memory.

Files live while an owner refers to them (`refer`: a problem version, a task's stored output);
`sweep` removes files no owner refers to that nobody asked for within the grace period
(`begin` and `stat` count as asking), and uploads abandoned for as long.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from khala.errors import InvalidInput
from khala.files.refs import CHUNK, FileRef


def check_chunk(size: int, offset: int, length: int) -> None:
    """A chunk of an upload of `size` bytes must start at a multiple of CHUNK and be CHUNK
    bytes long, or end the file. Raises InvalidInput."""
    if offset < 0 or offset % CHUNK or offset >= max(size, 1):
        raise InvalidInput(f"a chunk starts at a multiple of {CHUNK} within the file's "
                           f"{size} bytes, not at {offset}")
    if length != min(CHUNK, size - offset):
        raise InvalidInput(f"the chunk at {offset} must be {min(CHUNK, size - offset)} bytes, "
                           f"not {length}")


def check_range(offset: int, length: int) -> None:
    """A read is 0..CHUNK bytes from a non-negative offset. Raises InvalidInput."""
    if offset < 0 or length < 0 or length > CHUNK:
        raise InvalidInput(f"a read is 0..{CHUNK} bytes from a non-negative offset")


def read_length(size: int, offset: int, length: int) -> int:
    """The bytes a read of (`offset`, `length`) returns from a file of `size` bytes (short at
    its end)."""
    return max(0, min(length, size - offset))


def task_owner(task_id: str) -> str:
    """The owner name under which a task refers to its outputs kept as files."""
    return f"task:{task_id}"


class FileStore(ABC):
    @abstractmethod
    def stat(self, sha256: str, now: str = "") -> int | None:
        """The size of the stored file, or None. With `now`, it counts as asked for then (the
        sweep leaves it alone for the grace period)."""

    @abstractmethod
    def begin(self, sha256: str, size: int, now: str) -> str:
        """Start an upload of `size` bytes hashing to `sha256`; returns its id, or "" when the
        file is stored already (nothing to send). InvalidInput for a bad digest or size."""

    @abstractmethod
    def put(self, upload: str, offset: int, data: bytes) -> None:
        """Write one chunk (check_chunk). NotFound for an unknown (or swept) upload."""

    @abstractmethod
    def end(self, upload: str) -> FileRef:
        """Check the upload's bytes against its digest and keep the file; the upload is gone
        either way. NotFound for an unknown upload, InvalidInput when the bytes do not match
        (a chunk missing or wrong)."""

    @abstractmethod
    def read(self, sha256: str, offset: int, length: int) -> bytes:
        """Up to `length` (≤ CHUNK) bytes from `offset` (check_range). NotFound."""

    @abstractmethod
    def refer(self, owner: str, digests: list[str]) -> None:
        """`owner` (e.g. `problem:<id>:<version>`, `task:<id>`) refers to these files."""

    @abstractmethod
    def release(self, owner: str) -> None:
        """`owner` refers to nothing any more."""

    @abstractmethod
    def sweep(self, before: str) -> int:
        """Remove the files no owner refers to that were stored and last asked for before
        `before`, and the uploads begun before it; returns how many files went."""

    def chunks(self, sha256: str) -> Iterator[bytes]:
        """The whole file, a chunk at a time. NotFound."""
        offset = 0
        while True:
            data = self.read(sha256, offset, CHUNK)
            if not data:
                return
            yield data
            offset += len(data)
