"""Images through a real cluster (a judicator on SQLite, an executor in bwrap, a gateway): a
tiny image (the host's bash and busybox-static, built here) imported with `khala image import`,
listed, and run in by plain and judged tasks — their `/` is the image's, read-only; fetched once
by the executor and unpacked once, kept across its restart; an unknown image refused at
submission; a refused tar stores nothing; a deleted version named by no new task."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from khala.cli.up import free_port, wait_port
from tests.fixtures.cluster import Cluster
from tests.images.tars import MARKER, MARKER_TEXT, make_tar, member, minimal, tiny_tar
from tests.problems import helpers as h

pytestmark = pytest.mark.integration

HOST_ONLY = "/usr/bin/gcc"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("images")
    c = Cluster(tmp)
    try:
        c.start_judicator()
        eport = free_port()
        work = os.path.join(c.work_root, "exec-img")
        node = c.start_executor(slots=2, metrics_listen=f"127.0.0.1:{eport}", name="exec-img",
                                work_dir=work)
        wait_port(eport, node.proc, 60)  # its metrics are read from the first test on
        c.start_gateway()
        yield {"cluster": c, "url": c.gateway_url, "tmp": tmp, "work": work, "eport": eport,
               "tar": tiny_tar(str(tmp / "tiny.tar"), str(tmp))}
    finally:
        c.stop()


def khala(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "khala", "image", "--url", url, *args],
                          capture_output=True, text=True, timeout=300, check=False)


def submit(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/api/v2/tasks", json=body, timeout=60)


def plain(image: str) -> dict[str, Any]:
    """A plain task whose both steps run in `image`: the compile step keeps the marker in the
    work dir, the run reads it back and tries the host's compiler and a write into `/`."""
    return {"compile": {"command": f"cat {MARKER} > kept.txt", "image": image},
            "execute": {"command": f"cat kept.txt; ls {HOST_ONLY} 2>/dev/null || echo no-gcc; "
                        f"(echo x > {MARKER}) 2>/dev/null && echo wrote || echo read-only",
                        "image": image}}


def stdout(url: str, task: dict[str, Any]) -> str:
    answer = requests.get(f"{url}/api/v2/tasks/{task['id']}/outputs/execute/stdout", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.content.decode()


def fetches(env: dict[str, Any]) -> float:
    return h.metric(f"http://127.0.0.1:{env['eport']}/metrics", "khala_file_fetches_total")


def test_imported_listed_and_run_in(env: dict[str, Any]) -> None:
    url = env["url"]
    done = khala(url, "import", "tiny", env["tar"], "--note", "bash and busybox")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tiny:1 ")
    listed = khala(url, "list")
    assert listed.returncode == 0 and "bash and busybox" in listed.stdout
    images = requests.get(f"{url}/api/v2/images", timeout=30).json()["data"]
    assert [(i["name"], i["version"], i["note"]) for i in images] == [
        ("tiny", 1, "bash and busybox")]
    before = fetches(env)
    ids = []
    for name in ("tiny", "tiny:1"):
        answer = submit(url, plain(name))
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["data"]["id"])
    for task_id in ids:
        task = h.finished(url, task_id)
        assert task["status"] == "success", task
        assert stdout(url, task) == MARKER_TEXT + "no-gcc\nread-only\n"
        assert task["execute"]["image"]["resolved"] == 1
        assert task["compile"]["image"]["sha256"] == images[0]["sha256"]
    assert fetches(env) - before == 1  # the tar, once for both tasks and both steps
    metrics = f"http://127.0.0.1:{env['eport']}/metrics"
    assert h.metric(metrics, "khala_image_unpacks_total") == 1
    unpacked = [n for n in os.listdir(os.path.join(env["work"], ".images"))
                if len(n) == 64]
    assert unpacked == [images[0]["sha256"]]


def test_a_judged_task_runs_in_the_image(env: dict[str, Any]) -> None:
    url = env["url"]
    script = f"cat {MARKER}; ls {HOST_ONLY} 2>/dev/null; exit 0"
    body = {"compile": {"command": f"echo '{script}' > run.sh", "image": "tiny"},
            "execute": {"command": "bash run.sh", "image": "tiny",
                        "cases": [{"standard": MARKER_TEXT}, {"standard": "other\n"}]}}
    answer = submit(url, body)
    assert answer.status_code == 201, answer.text
    task = h.finished(url, answer.json()["data"]["id"])
    verdicts = [c["verdict"] for c in task["result"]["judgement"]["cases"]]
    assert verdicts == ["accepted", "wrong_answer"], task


def test_an_unknown_image_is_refused_at_submission(env: dict[str, Any]) -> None:
    url = env["url"]
    for name, words in (("nope", "no image 'nope'"), ("tiny:9", "no image 'tiny:9'")):
        answer = submit(url, plain(name))
        assert answer.status_code == 422, answer.text
        assert words in answer.text
    answer = submit(url, plain("Not A Name"))
    assert answer.status_code == 422


def test_a_refused_tar_stores_nothing(env: dict[str, Any]) -> None:
    url, tmp = env["url"], env["tmp"]
    bad = make_tar(str(tmp / "bad.tar"), minimal([member("../escape", data=b"x")]))
    done = khala(url, "import", "bad", bad)
    assert done.returncode == 2 and "'..' are refused" in done.stderr  # refused here first
    with open(bad, "rb") as fh:  # and by the gateway, whoever sends it
        answer = requests.post(f"{url}/api/v2/images/bad", data=fh, timeout=60)
    assert answer.status_code == 422 and "'..' are refused" in answer.text
    noshell = make_tar(str(tmp / "noshell.tar"), [member("etc", b"5", mode=0o755)])
    with open(noshell, "rb") as fh:
        answer = requests.post(f"{url}/api/v2/images/bad", data=fh, timeout=60)
    assert answer.status_code == 422 and "/bin/sh" in answer.text
    names = {i["name"] for i in requests.get(f"{url}/api/v2/images", timeout=30).json()["data"]}
    assert names == {"tiny"}


def test_unpacked_once_and_kept_across_a_restart(env: dict[str, Any]) -> None:
    c, url = env["cluster"], env["url"]
    sha = requests.get(f"{url}/api/v2/images", timeout=30).json()["data"][0]["sha256"]
    unpacked = Path(env["work"], ".images", sha)
    inode = unpacked.stat().st_ino
    old = c.executors[-1]
    old.stop()
    node = c.start_executor(slots=2, metrics_listen=f"127.0.0.1:{env['eport']}",
                            name="exec-img", work_dir=env["work"])
    wait_port(env["eport"], node.proc, 60)
    answer = submit(url, plain("tiny"))
    assert answer.status_code == 201, answer.text
    task = h.finished(url, answer.json()["data"]["id"])
    assert stdout(url, task).startswith(MARKER_TEXT), task
    assert fetches(env) == 0  # the new process fetched nothing: the image was on disk
    assert unpacked.stat().st_ino == inode


def test_a_deleted_version_is_named_by_no_new_task(env: dict[str, Any]) -> None:
    url = env["url"]
    again = khala(url, "import", "tiny", env["tar"])
    assert again.returncode == 0 and again.stdout.startswith("tiny:2 "), again.stderr
    done = khala(url, "delete", "tiny:1")
    assert done.returncode == 0, done.stderr
    assert submit(url, plain("tiny:1")).status_code == 422
    answer = submit(url, plain("tiny"))  # the latest is version 2 now (the same tar)
    assert answer.status_code == 201, answer.text
    task = h.finished(url, answer.json()["data"]["id"])
    assert task["execute"]["image"]["resolved"] == 2 and task["status"] == "success", task
    missing = khala(url, "delete", "tiny:1")
    assert missing.returncode == 3 and "no image tiny:1" in missing.stderr
