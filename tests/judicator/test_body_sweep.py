"""The leader's file sweep also removes MongoDB task bodies no task names (what a judicator
dying between a body's write and its task's leaves), on a real judicator over FerretDB: the
body left behind goes, a task's own body stays and the task still reads whole."""

from __future__ import annotations

import time
from typing import Any

import pytest
from bson import Binary, ObjectId
from pymongo import MongoClient

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration

BIG_INPUT = "1 2\n" * 20_000  # beyond bodies.BODY_MIN: stored apart
LONG_AGO = "2000-01-01T00:00:00.000000"  # a mark past any grace


def test_a_body_left_behind_is_swept_and_a_tasks_body_kept(
        cluster_factory: Any, mongo_url: str) -> None:
    """Two marks past the grace: one on a body no task names (a death between the two
    inserts), one on the queued task's own body (a death before its mark was cleared). The
    first body goes, the second stays; both marks go."""
    c: Cluster = cluster_factory()
    c.start_judicator(store=mongo_url, mongo_bodies_apart="true", files_sweep_interval=0.2)
    c.start_gateway()
    task_id = c.submit(execute_input=BIG_INPUT)  # no executor: it stays queued
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    try:
        db = client.get_default_database()
        named = db["tasks"].find_one({"_id": ObjectId(task_id)}, {"body": 1})
        assert named is not None and isinstance(named.get("body"), ObjectId)
        orphan = ObjectId()
        db["task_bodies"].insert_one({"_id": orphan, "source": Binary(b""),
                                      "data": Binary(b""), "io": Binary(b""),
                                      "texts": Binary(b"")})
        db["pending_bodies"].insert_many([{"_id": orphan, "at": LONG_AGO},
                                          {"_id": named["body"], "at": LONG_AGO}])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and db["pending_bodies"].count_documents({}):
            time.sleep(0.1)
        assert db["pending_bodies"].count_documents({}) == 0, c.logs()
        assert db["task_bodies"].count_documents({"_id": orphan}) == 0
        assert db["task_bodies"].count_documents({"_id": named["body"]}) == 1
    finally:
        client.close()
    shown = c.get(task_id, no_truncate=1)
    assert shown["result"] == 0 and shown["task"]["execute"]["input"] == BIG_INPUT, shown
    assert "body sweep removed 1 task body no task names" in c.judicators[0].log()
