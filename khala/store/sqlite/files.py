"""The SQLite backend's files (khala/store/files.py): the bytes in a directory beside the
database file (`<db>.files/objects/ab/<sha256>`, uploads in `<db>.files/uploads/<id>`), what
exists and who refers to it in the database, on the task store's connections.

An upload is a file written at each chunk's offset; `end` hashes it as it reads it back and
renames it into place. The sweep runs in one IMMEDIATE transaction, so a file is removed only if
nothing referred to it or asked for it at that moment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

from khala.errors import InvalidInput, NotFound
from khala.files.refs import CHUNK, FileRef, check_digest
from khala.model import new_id, valid_id
from khala.store.files import FileStore, check_chunk, check_range, read_length
from khala.store.sqlite.connections import Connections

FILES_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, used TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_used ON files (used);
CREATE TABLE IF NOT EXISTS file_uploads (
    id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL, started TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS file_refs (
    owner TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (owner, sha256));
CREATE INDEX IF NOT EXISTS file_refs_sha256 ON file_refs (sha256);
"""


class SqliteFiles(FileStore):
    def __init__(self, connections: Connections, root: str) -> None:
        self._connections = connections
        self.root = root
        self._objects = os.path.join(root, "objects")
        self._uploads = os.path.join(root, "uploads")
        for path in (self._objects, self._uploads):
            os.makedirs(path, mode=0o700, exist_ok=True)
        connections.get().executescript(FILES_SCHEMA)

    def _path(self, sha256: str) -> str:
        return os.path.join(self._objects, sha256[:2], sha256)

    def _upload_path(self, upload: str) -> str:
        if not valid_id(upload):
            raise NotFound(f"no upload {upload!r}")
        return os.path.join(self._uploads, upload)

    # ------------------------------------------------------------------ uploads

    def stat(self, sha256: str, now: str = "") -> int | None:
        check_digest(sha256)
        conn = self._connections.get()
        row = conn.execute("SELECT size FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            return None
        if now:
            conn.execute("UPDATE files SET used = ? WHERE sha256 = ? AND used < ?",
                         (now, sha256, now))
        return int(row[0])

    def begin(self, sha256: str, size: int, now: str) -> str:
        check_digest(sha256)
        if size < 0:
            raise InvalidInput("a file's size is 0 or more bytes")
        if self.stat(sha256, now) is not None:
            return ""
        upload = new_id()
        with open(self._upload_path(upload), "xb"):
            pass
        self._connections.get().execute(
            "INSERT INTO file_uploads (id, sha256, size, started) VALUES (?, ?, ?, ?)",
            (upload, sha256, size, now))
        return upload

    def _upload(self, upload: str) -> tuple[str, int, str, str]:
        """(its file, size, sha256, when it began)."""
        path = self._upload_path(upload)
        row = self._connections.get().execute(
            "SELECT sha256, size, started FROM file_uploads WHERE id = ?", (upload,)).fetchone()
        if row is None:
            raise NotFound(f"no upload {upload!r}")
        return path, int(row["size"]), str(row["sha256"]), str(row["started"])

    def put(self, upload: str, offset: int, data: bytes) -> None:
        path, size, _, _ = self._upload(upload)
        check_chunk(size, offset, len(data))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise NotFound(f"no upload {upload!r}") from exc
        try:
            view = memoryview(data)
            while view:
                view = view[os.pwrite(fd, view, offset + len(data) - len(view)):]
        finally:
            os.close(fd)

    def end(self, upload: str) -> FileRef:
        path, size, sha256, started = self._upload(upload)
        conn = self._connections.get()
        try:
            hasher, length = hashlib.sha256(), 0
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    hasher.update(chunk)
                    length += len(chunk)
            if length != size or hasher.hexdigest() != sha256:
                raise InvalidInput(f"the upload's {length} bytes do not hash to its sha256 "
                                   f"{sha256} of {size} bytes (a chunk missing or wrong)")
            target = self._path(sha256)
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            os.chmod(path, 0o400)
            # In the transaction: a sweep (which unlinks in its own) cannot remove the bytes
            # between their move into place and their row.
            with self._connections.transaction() as tx:
                os.replace(path, target)  # the same bytes when another upload got there first
                tx.execute("INSERT INTO files (sha256, size, used) VALUES (?, ?, ?) "
                           "ON CONFLICT (sha256) DO UPDATE SET used = MAX(used, excluded.used)",
                           (sha256, size, started))
            return FileRef(sha256, size)
        finally:
            conn.execute("DELETE FROM file_uploads WHERE id = ?", (upload,))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # ------------------------------------------------------------------ reading

    def read(self, sha256: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        size = self.stat(sha256)
        if size is None:
            raise NotFound(f"no file {sha256}")
        wanted = read_length(size, offset, length)
        if not wanted:
            return b""
        try:
            fd = os.open(self._path(sha256), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise NotFound(f"no file {sha256} (its bytes are gone)") from exc
        try:
            return os.pread(fd, wanted, offset)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ references

    def refer(self, owner: str, digests: list[str]) -> None:
        rows = [(owner, check_digest(d)) for d in sorted(set(digests))]
        with self._connections.transaction() as tx:
            tx.executemany("INSERT OR IGNORE INTO file_refs (owner, sha256) VALUES (?, ?)", rows)

    def release(self, owner: str) -> None:
        self._connections.get().execute("DELETE FROM file_refs WHERE owner = ?", (owner,))

    def sweep(self, before: str) -> int:
        with self._connections.transaction() as tx:
            gone = [r[0] for r in tx.execute(
                "DELETE FROM files WHERE used < ? AND NOT EXISTS (SELECT 1 FROM file_refs r "
                "WHERE r.sha256 = files.sha256) RETURNING sha256", (before,)).fetchall()]
            stale = [r[0] for r in tx.execute(
                "DELETE FROM file_uploads WHERE started < ? RETURNING id", (before,)).fetchall()]
            # Unlinked inside the transaction: an upload of the same bytes ending now moves
            # its file into place only after it (end's transaction waits for this one).
            for path in [self._path(d) for d in gone] + [os.path.join(self._uploads, u)
                                                          for u in stale]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return len(gone)


def files_root(db_path: str) -> str:
    """The directory of a database file's files: beside it, `<name>.files`."""
    return os.path.abspath(db_path) + ".files"
