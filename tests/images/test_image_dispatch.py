"""Dispatch respects images, through a real cluster (a judicator on SQLite, a gateway, real
executors): an executor that cannot run a step in an image (`--sandbox none`, and an old one
that names no features in its reports) is never given a task in one; the task waits queued —
not failed, not lost — while that executor runs the plain tasks submitted after it, and runs
as soon as a bwrap executor joins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.images.tars import MARKER, MARKER_TEXT, tiny_tar
from tests.images.test_images_cluster import khala, submit
from tests.problems import helpers as h

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("image-dispatch")
    c = Cluster(tmp)
    try:
        c.start_judicator()
        c.start_gateway()
        done = khala(c.gateway_url, "import", "tiny", tiny_tar(str(tmp / "tiny.tar"), str(tmp)))
        assert done.returncode == 0, done.stderr
        yield c
    finally:
        c.stop()


def task(url: str, task_id: str) -> dict[str, Any]:
    answer = requests.get(f"{url}/api/v2/tasks/{task_id}", timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["data"])


def test_an_image_task_waits_for_an_executor_that_can_run_it(cluster: Cluster) -> None:
    url = cluster.gateway_url
    # Oldest first: a `none` executor given whatever is queued would take the image task first.
    answer = submit(url, {"compile": {"command": "true", "image": "tiny"},
                          "execute": {"command": f"cat {MARKER}", "image": "tiny"}})
    assert answer.status_code == 201, answer.text
    in_image = answer.json()["data"]["id"]
    cluster.start_executor(slots=1, sandbox="none", name="exec-none",
                           work_dir=os.path.join(cluster.work_root, "exec-none"))
    for _ in range(3):  # each one leased by the `none` executor, after the image task
        answer = submit(url, {"compile": {"command": "true"}, "execute": {"command": "echo p"}})
        assert answer.status_code == 201, answer.text
        plain = h.finished(url, answer.json()["data"]["id"])
        assert plain["status"] == "success" and plain["executor"] == "exec-none", plain
        waiting = task(url, in_image)
        assert waiting["status"] == "pending" and waiting["executor"] is None, waiting
    # An old executor names no features: it is not given the image task either.
    old = cluster.rpc().report("exec-old", [], [], 4, 0, None, None)
    assert [t.id for t in old.assign or []] == [] and old.result == 0
    assert task(url, in_image)["status"] == "pending"

    cluster.start_executor(slots=1, name="exec-bwrap",
                           work_dir=os.path.join(cluster.work_root, "exec-bwrap"))
    done = h.finished(url, in_image)
    assert done["status"] == "success" and done["executor"] == "exec-bwrap", done
    stdout = requests.get(f"{url}/api/v2/tasks/{in_image}/outputs/execute/stdout", timeout=30)
    assert stdout.content.decode() == MARKER_TEXT
