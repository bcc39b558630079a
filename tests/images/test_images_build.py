"""`khala image build` for real: mmdebstrap makes a Debian root filesystem from the host's apt
mirror (minutes, and a download of ~50 MB), the CLI imports it, a task runs in it. Not part of
`make test`'s default path: set KHALA_SLOW_TESTS=1 to run it (docs/images.md says how it was
verified)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.problems import helpers as h

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.environ.get("KHALA_SLOW_TESTS"),
                       reason="builds a Debian image for minutes: KHALA_SLOW_TESTS=1"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("image-build"))
    try:
        c.start_judicator()
        c.start_executor(slots=1)
        c.start_gateway()
        yield c
    finally:
        c.stop()


def test_a_debian_image_built_imported_and_run_in(cluster: Cluster) -> None:
    url = cluster.gateway_url
    done = subprocess.run([sys.executable, "-m", "khala", "image", "--url", url, "build", "deb",
                           "--packages", "busybox", "--tool", "mmdebstrap"],
                          capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("deb:1 ")
    image = requests.get(f"{url}/api/v2/images", timeout=30).json()["data"][0]
    assert image["note"] == "mmdebstrap bookworm: busybox"
    body: dict[str, Any] = {
        "compile": {"command": "true", "image": "deb"},
        "execute": {"image": "deb", "command": "cat /etc/debian_version >/dev/null && "
                    "busybox echo in-debian; ls /usr/bin/gcc 2>/dev/null || echo no-gcc; "
                    "(touch /usr/bin/new) 2>/dev/null && echo wrote || echo read-only"}}
    answer = requests.post(f"{url}/api/v2/tasks", json=body, timeout=60)
    assert answer.status_code == 201, answer.text
    task = h.finished(url, answer.json()["data"]["id"], timeout=600)
    assert task["status"] == "success", task
    out = requests.get(f"{url}/api/v2/tasks/{task['id']}/outputs/execute/stdout", timeout=30)
    assert out.text == "in-debian\nno-gcc\nread-only\n"
