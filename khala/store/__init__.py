"""Persistent storage of tasks and executors, chosen by URL (sqlite:///…, mongodb://…)."""

from __future__ import annotations

from khala.errors import ConfigError
from khala.store.base import Store

__all__ = ["Store", "open_store"]


def open_store(url: str, **options: object) -> Store:
    """Open the backend named by `url`."""
    if url.startswith("sqlite://"):
        from khala.store.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from khala.store.mongodb import MongoStore

        return MongoStore.from_url(url, **options)  # type: ignore[arg-type]
    raise ConfigError(f"unsupported store URL {url!r}: use sqlite:///path or mongodb://host")
