"""The SQLite backend: the embedded default for a single judicator (one file, WAL)."""

from __future__ import annotations

from khala.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
