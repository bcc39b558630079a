"""The MongoDB-wire test server finds documents by `_id` through its index, as MongoDB does:
the file store reads chunks by `_id`, and a server scanning the collection for each (a stock
FerretDB v1's SQLite handler does: it indexes one expression and queries another) makes every
test that stores hundreds of megabytes take minutes per call. scripts/install-deps.sh builds
FerretDB so; this test fails on a server built otherwise."""

from __future__ import annotations

import pytest
from bson import ObjectId
from pymongo import MongoClient

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("key", ["chunk-7:0", ObjectId()], ids=["string", "objectid"])
def test_a_lookup_by_id_searches_the_id_index(mongo_url: str, key: object) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(mongo_url)
    try:
        db = client.get_default_database()
        others: list[dict[str, object]] = [{"_id": f"other-{i}"} for i in range(50)]
        db.files.insert_many([{"_id": key}, *others])
        plan = db.command("explain", {"find": "files", "filter": {"_id": key}})
        steps = " ".join(plan["queryPlanner"]["Plan"])
        assert "USING INDEX" in steps and "__id_" in steps, steps
        assert db.files.find_one({"_id": key}) == {"_id": key}
    finally:
        client.close()
