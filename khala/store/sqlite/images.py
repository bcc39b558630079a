"""The SQLite backend's images (khala/store/images.py), on the task store's connections."""

from __future__ import annotations

import sqlite3

from khala.files.refs import FileRef
from khala.images.model import ImageInfo
from khala.store.images import ImageStore
from khala.store.sqlite.connections import Connections

IMAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS image_names (
    name TEXT PRIMARY KEY, next_version INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS images (
    name TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    created TEXT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (name, version));
"""


def _info(row: sqlite3.Row) -> ImageInfo:
    return ImageInfo(name=row["name"], version=int(row["version"]),
                     file=FileRef(row["sha256"], int(row["size"])), created=row["created"],
                     note=row["note"])


class SqliteImages(ImageStore):
    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        connections.get().executescript(IMAGES_SCHEMA)

    def add(self, name: str, file: FileRef, note: str, now: str) -> int:
        with self._connections.transaction() as tx:
            tx.execute("INSERT INTO image_names (name) VALUES (?) ON CONFLICT DO NOTHING",
                       (name,))
            row = tx.execute("UPDATE image_names SET next_version = next_version + 1 "
                             "WHERE name = ? RETURNING next_version - 1", (name,)).fetchone()
            number = int(row[0])
            tx.execute("INSERT INTO images (name, version, sha256, size, created, note) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (name, number, file.sha256, file.size, now, note))
        return number

    def get(self, name: str, version: int = 0) -> ImageInfo | None:
        if version:
            row = self._connections.get().execute(
                "SELECT * FROM images WHERE name = ? AND version = ?", (name, version)).fetchone()
        else:
            row = self._connections.get().execute(
                "SELECT * FROM images WHERE name = ? ORDER BY version DESC LIMIT 1",
                (name,)).fetchone()
        return None if row is None else _info(row)

    def all(self, name: str = "") -> list[ImageInfo]:
        if name:
            rows = self._connections.get().execute(
                "SELECT * FROM images WHERE name = ? ORDER BY version", (name,))
        else:
            rows = self._connections.get().execute("SELECT * FROM images ORDER BY name, version")
        return [_info(r) for r in rows.fetchall()]

    def delete(self, name: str, version: int) -> bool:
        cur = self._connections.get().execute(
            "DELETE FROM images WHERE name = ? AND version = ?", (name, version))
        return cur.rowcount == 1
