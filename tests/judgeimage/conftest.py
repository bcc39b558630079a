"""A real cluster with the judge image (images/judge.toml, built by `make images`): a
judicator on SQLite, a gateway, the image imported with `khala image import`, then an executor
in bwrap that offers the image's languages (its `images` setting). Module-scoped per test
file; skipped when the image has not been built."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.judgeimage.image import JUDGE_TAR, recipe

IMPORT_SECONDS = 1800  # a tar of gigabytes through the gateway, checked on both sides
OFFER_SECONDS = 1800  # the executor fetches it from the judicator and unpacks it


@dataclass
class JudgeCluster:
    cluster: Cluster
    url: str
    image: str  # "judge:N" as imported
    languages: dict[str, dict[str, Any]]  # as /api/v2/languages lists the image's


def offered(url: str, image: str) -> dict[str, dict[str, Any]]:
    answer = requests.get(f"{url}/api/v2/languages", timeout=30)
    assert answer.status_code == 200, answer.text
    return {x["name"]: x for x in answer.json()["data"] if x["image"] == image}


def start(c: Cluster) -> JudgeCluster:
    c.start_judicator()
    c.start_gateway()
    url = c.gateway_url
    done = subprocess.run([sys.executable, "-m", "khala", "image", "--url", url, "import",
                           "judge", JUDGE_TAR, "--note", "images/judge.toml"],
                          capture_output=True, text=True, timeout=IMPORT_SECONDS, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    image = done.stdout.split()[0]
    c.start_executor(slots=2, name="exec-judge", images="judge")
    wanted = {x.name for x in recipe().languages}
    deadline = time.monotonic() + OFFER_SECONDS
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        found = offered(url, image)
        if set(found) >= wanted:
            return JudgeCluster(c, url, image, found)
        time.sleep(1)
    raise AssertionError(f"{image} offers {sorted(found)}, not {sorted(wanted)}\n{c.logs()}")


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JudgeCluster]:
    tmp = tmp_path_factory.mktemp("judge-image")
    c = Cluster(tmp)
    try:
        yield start(c)
    finally:
        c.stop()
        # the stored tar (gigabytes) goes; the nodes' logs stay with pytest's temp dirs
        shutil.rmtree(tmp / "khala.db.files", ignore_errors=True)
