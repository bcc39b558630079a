"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from khala.store import open_store
from khala.store.mongo.ferret import FerretStore


@pytest.fixture
def stores(mongo_url: str) -> Iterator[tuple[FerretStore, FerretStore]]:
    """Two judicators' stores on one FerretDB database, opened as a judicator opens them
    (`open_store`: the server says it is FerretDB)."""
    pair = (open_store(mongo_url), open_store(mongo_url))
    assert all(isinstance(s, FerretStore) for s in pair)
    yield pair  # type: ignore[misc]
    for store in pair:
        store.close()
