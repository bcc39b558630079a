"""The leader's file sweep also removes MongoDB task bodies no task names (what a judicator
dying between a body's write and its task's leaves), on a real judicator over FerretDB: the
orphan goes, a queued task's body stays and the task still reads whole."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from bson import Binary, ObjectId
from pymongo import MongoClient

from tests.fixtures.cluster import Cluster

pytestmark = pytest.mark.integration

BIG_INPUT = "1 2\n" * 20_000  # beyond bodies.BODY_MIN: stored apart


def orphan_body(made: float) -> dict[str, Any]:
    """A body document that says it was made at `made` (epoch seconds), named by no task."""
    stamp = int(made).to_bytes(4, "big") + os.urandom(8)
    return {"_id": ObjectId(stamp), "source": Binary(b""), "data": Binary(b""),
            "io": Binary(b""), "texts": Binary(b"")}


def test_an_orphan_body_is_swept_and_a_tasks_body_kept(
        cluster_factory: Any, mongo_url: str) -> None:
    """With no grace, the task's own body is as old as the sweep looks: it is kept because its
    task names it. The walk goes in id order, so once the orphan made after that body has
    gone, a pass has looked at the body too."""
    c: Cluster = cluster_factory()
    c.start_judicator(store=mongo_url, mongo_bodies_apart="true", files_grace=0,
                      files_sweep_interval=0.2)
    c.start_gateway()
    task_id = c.submit(execute_input=BIG_INPUT)  # no executor: it stays queued
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    try:
        bodies, tasks = client.get_default_database()["task_bodies"], \
            client.get_default_database()["tasks"]
        named = tasks.find_one({"_id": ObjectId(task_id)}, {"body": 1})
        assert named is not None and isinstance(named.get("body"), ObjectId)
        after = named["body"].generation_time.timestamp() + 1
        orphans = [orphan_body(time.time() - 3600), orphan_body(after)]
        bodies.insert_many(orphans)
        ids = [o["_id"] for o in orphans]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and bodies.count_documents({"_id": {"$in": ids}}):
            time.sleep(0.1)
        assert bodies.count_documents({"_id": {"$in": ids}}) == 0, c.logs()
        assert bodies.count_documents({"_id": named["body"]}) == 1
    finally:
        client.close()
    shown = c.get(task_id, no_truncate=1)
    assert shown["result"] == 0 and shown["task"]["execute"]["input"] == BIG_INPUT, shown
    assert "body sweep removed" in c.judicators[0].log()
