"""Moving a file through the judicators' file calls (docs/rpc.md, "Files"), a chunk at a time:
`send` uploads (nothing when the store has it already), `receive` downloads. `client` is
anything with the typed client's file calls (khala/rpc/client.py, khala/rpc/stub.py)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from typing import BinaryIO, Protocol

from khala.errors import InvalidInput
from khala.files.refs import CHUNK, FileRef, chunks_of


class FileCalls(Protocol):
    def file_begin(self, ref: FileRef) -> str: ...

    def file_put(self, upload: str, offset: int, data: bytes) -> None: ...

    def file_end(self, upload: str) -> FileRef: ...

    def file_read(self, sha256: str, offset: int, length: int) -> bytes: ...


def hash_file(fh: BinaryIO) -> FileRef:
    """The reference of an open file's bytes from its start (read once, a chunk at a time)."""
    fh.seek(0)
    hasher, size = hashlib.sha256(), 0
    while chunk := fh.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return FileRef(hasher.hexdigest(), size)


def send(client: FileCalls, ref: FileRef, read_at: Callable[[int, int], bytes]) -> bool:
    """Upload the file `ref` names, reading (offset, length) pieces with `read_at`. False when
    the store had it already (nothing was sent)."""
    upload = client.file_begin(ref)
    if not upload:
        return False
    for offset, length in chunks_of(ref.size):
        client.file_put(upload, offset, read_at(offset, length))
    client.file_end(upload)
    return True


def send_chunks(client: FileCalls, ref: FileRef, chunks: Iterable[bytes]) -> bool:
    """Upload the file `ref` names from its bytes in order (pieces of any size, re-cut to
    CHUNK): for sources that read only forwards (a zip member, a request body). False when
    the store had it already (`chunks` is then not read)."""
    upload = client.file_begin(ref)
    if not upload:
        return False
    offset, pending = 0, bytearray()
    for piece in chunks:
        pending += piece
        while len(pending) >= CHUNK:
            client.file_put(upload, offset, bytes(pending[:CHUNK]))
            del pending[:CHUNK]
            offset += CHUNK
    if pending:
        client.file_put(upload, offset, bytes(pending))
    client.file_end(upload)
    return True


def send_bytes(client: FileCalls, data: bytes) -> FileRef:
    ref = FileRef(hashlib.sha256(data).hexdigest(), len(data))
    view = memoryview(data)
    send(client, ref, lambda offset, length: bytes(view[offset:offset + length]))
    return ref


def send_file(client: FileCalls, fh: BinaryIO) -> FileRef:
    """Upload an open (seekable) file: hashed first, then sent if the store lacks it."""
    ref = hash_file(fh)

    def read_at(offset: int, length: int) -> bytes:
        return os.pread(fh.fileno(), length, offset)

    send(client, ref, read_at)
    return ref


def receive(client: FileCalls, ref: FileRef, write: Callable[[bytes], object]) -> None:
    """Download `ref` a chunk at a time into `write`, checking its size and hash at the end.
    InvalidInput when the bytes received are not the file's."""
    hasher, size = hashlib.sha256(), 0
    while size < ref.size:
        data = client.file_read(ref.sha256, size, min(CHUNK, ref.size - size))
        if not data:
            break
        hasher.update(data)
        write(data)
        size += len(data)
    if size != ref.size or hasher.hexdigest() != ref.sha256:
        raise InvalidInput(f"file {ref.sha256}: the {size} bytes received are not the file's")
