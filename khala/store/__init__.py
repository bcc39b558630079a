"""Persistent storage of tasks, executors and operations, one backend per folder, chosen by URL:
`sqlite:///path` (khala/store/sqlite/) or `mongodb://…` (khala/store/mongo/; on a FerretDB
server, its FerretDB store)."""

from __future__ import annotations

from khala.errors import ConfigError
from khala.store.base import Store
from khala.store.ops import OpsStore

__all__ = ["OpsStore", "Store", "open_store"]


def open_store(url: str, write_concern: str | int = "majority",
               read_concern: str = "majority", bodies_apart: bool = False) -> Store:
    """Open the backend named by `url`; its `ops` share its connections. The concerns apply to
    MongoDB's task collections only; `bodies_apart` to MongoDB's new tasks
    (khala/store/mongo/bodies.py)."""
    if url.startswith("sqlite://"):
        from khala.store.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from khala.store.mongo import open_mongo

        return open_mongo(url, write_concern, read_concern, bodies_apart)
    raise ConfigError(f"unsupported store URL {url!r}: use sqlite:///path or mongodb://host")
