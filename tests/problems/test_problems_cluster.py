"""Stored problems through a real cluster (a judicator on SQLite, an executor in bwrap, a
gateway): a problem uploaded once and judged twenty times, each submission carrying only its
source over the wire (measured by a relay between the gateway and the judicator) and the
executor fetching the tests once (its metrics); a corrupted cache file found and fetched again;
versions that tasks name kept; a rejudge after a test change moving verdicts and keeping the
earlier judgements; a Polygon package judged with its own checker and headers; a task's own
step options reaching the runs the problem judges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from khala.cli.up import free_port
from tests.fixtures.cluster import Cluster
from tests.problems import helpers as h
from tests.problems.packages import AB_TOML, TOKEN_CHECKER, ab_package, write_tree
from tests.problems.relay import CountingRelay
from tests.problems.test_packages import PROBLEM_XML, polygon_files

pytestmark = pytest.mark.integration

CASES = 20
CASE_BYTES = 60_000  # per input: the tests are ~2.4 MB, a submission ~100 bytes of source


def big_ab(cases: int = CASES) -> dict[str, bytes]:
    """A+B whose inputs carry a long comment line the solution skips."""
    files = {"problem.toml": AB_TOML.encode()}
    for i in range(1, cases + 1):
        pad = os.urandom(CASE_BYTES // 2).hex()
        files[f"tests/{i:02d}.in"] = f"{i} {i * 7}\n{pad}\n".encode()
        files[f"tests/{i:02d}.ans"] = f"{i * 8}\n".encode()
    return files


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    c = Cluster(tmp_path_factory.mktemp("problems"))
    relay = None
    try:
        c.start_judicator()
        eport = free_port()
        c.start_executor(slots=2, metrics_listen=f"127.0.0.1:{eport}", name="exec-p")
        relay = CountingRelay(("127.0.0.1", c.judicators[0].port))  # gateway → judicator
        c.start_gateway(judicators=f"127.0.0.1:{relay.port}")
        h.wait_languages(c.gateway_url, "python3", "cpp")
        yield {"cluster": c, "url": c.gateway_url, "relay": relay,
               "metrics": f"http://127.0.0.1:{eport}/metrics",
               "cache": Path(c.work_root) / "e2" / ".file-cache"}
    finally:
        if relay is not None:
            relay.close()
        c.stop()


def fetches(env: dict[str, Any]) -> tuple[float, float, float]:
    m = env["metrics"]
    return (h.metric(m, "khala_file_fetches_total"), h.metric(m, "khala_file_cache_hits_total"),
            h.metric(m, "khala_file_refetches_total"))


def test_uploaded_once_judged_twenty_times_sending_only_the_source(env: dict[str, Any]) -> None:
    url, relay = env["url"], env["relay"]
    files = big_ab()
    made = h.upload(url, "big-ab", files)
    assert made["version"] == 1 and made["data"]["versions"][0]["cases"] == CASES
    test_bytes = sum(len(v) for k, v in files.items() if k.startswith("tests/"))
    before = fetches(env)
    body = h.submission("big-ab")
    sent = len(json.dumps(body).encode())
    relay.reset()
    ids = [h.submit(url, body) for _ in range(20)]
    up_submitting, _ = relay.counts()
    with ThreadPoolExecutor(4) as pool:
        tasks = list(pool.map(lambda i: h.finished(url, i), ids))
    assert [h.verdict(t) for t in tasks] == ["accepted"] * 20, tasks[0]["result"]
    assert all(t["result"]["judgement"]["score"] == CASES for t in tasks)
    assert {t["execute"]["problem"]["judged"] for t in tasks} == {1}
    # On the wire: each HTTP body and each submit call carry the source, never the tests.
    assert sent < 1000 < test_bytes // 1000
    assert up_submitting < 20 * (sent + 4096), (up_submitting, sent)
    # The executor fetched the spec and every test once; the other 19 tasks found the tests in
    # its file cache (and the spec parsed in memory).
    after = fetches(env)
    assert after[0] - before[0] == 2 * CASES + 1
    assert after[1] - before[1] == 19 * 2 * CASES
    print(f"\nwire: {sent} bytes per HTTP submission, {up_submitting / 20:.0f} bytes per "
          f"submission gateway → judicator; tests {test_bytes} bytes fetched once")


def test_a_problem_task_runs_with_its_own_step_options(env: dict[str, Any]) -> None:
    """The problem gives the judging; the task's execute options still reach every case's run
    (the program adds $SHIFT: accepted with 0, a wrong answer with 1; without it, a crash)."""
    url = env["url"]
    h.upload(url, "ab-env", ab_package(3))
    source = ("import os\na, b = map(int, input().split())\n"
              "print(a + b + int(os.environ['SHIFT']))\n")
    verdicts = []
    for shift in ("0", "1"):
        body = h.submission("ab-env")
        body["compile"]["files"] = [{"path": "main.py", "content": source}]
        body["execute"]["env"] = {"SHIFT": shift}
        verdicts.append(h.verdict(h.finished(url, h.submit(url, body))))
    assert verdicts == ["accepted", "wrong_answer"]


def cached(env: dict[str, Any], data: bytes) -> Path:
    """The cache file of a test with these bytes (found by content)."""
    for path in (env["cache"] / "objects").rglob("*"):
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return path
    raise AssertionError("not in the cache")


def test_a_corrupted_cache_file_is_found_and_fetched_again(env: dict[str, Any]) -> None:
    url = env["url"]
    files = ab_package(3)
    h.upload(url, "corrupt", files)
    assert h.verdict(h.finished(url, h.submit(url, h.submission("corrupt")))) == "accepted"
    path = cached(env, files["tests/02.ans"])
    before = fetches(env)
    os.chmod(path, 0o644)
    path.write_bytes(b"99\n")  # the same size: only the hash tells
    assert h.verdict(h.finished(url, h.submit(url, h.submission("corrupt")))) == "accepted"
    after = fetches(env)
    assert (after[0] - before[0], after[2] - before[2]) == (1, 1)
    assert path.read_bytes() == files["tests/02.ans"]
    os.unlink(path)  # missing: fetched again too
    assert h.verdict(h.finished(url, h.submit(url, h.submission("corrupt")))) == "accepted"
    assert fetches(env)[0] - after[0] == 1


def test_wrong_answers_and_versions_tasks_name(env: dict[str, Any]) -> None:
    url = env["url"]
    h.upload(url, "ver", ab_package(3))
    h.upload(url, "ver", ab_package(4))
    wrong = h.finished(url, h.submit(url, h.submission("ver", "wrong", version=1)))
    assert h.verdict(wrong) == "wrong_answer" and wrong["execute"]["problem"]["judged"] == 1
    assert len(wrong["result"]["judgement"]["cases"]) == 3
    answer = requests.delete(f"{url}/api/v2/problems/ver/versions/1", timeout=30)
    assert answer.status_code == 409 and "judged against version 1" in answer.text
    assert requests.delete(f"{url}/api/v2/problems/ver/versions/2", timeout=30
                           ).status_code == 204
    versions = requests.get(f"{url}/api/v2/problems/ver", timeout=30).json()["data"]
    assert [v["version"] for v in versions["versions"]] == [1] and versions["latest"] == 1
    assert h.upload(url, "ver", ab_package(2))["version"] == 3  # 2 is never given again
    missing = requests.post(f"{url}/api/v2/tasks", json=h.submission("ver", version=2),
                            timeout=30)
    assert missing.status_code == 422 and "no version 2" in missing.text
    assert requests.delete(f"{url}/api/v2/problems/ver", timeout=30).status_code == 409


def test_rejudge_after_a_test_change_moves_verdicts_and_keeps_history(
        env: dict[str, Any]) -> None:
    url = env["url"]
    h.upload(url, "rj", ab_package(3))
    right = h.submit(url, h.submission("rj"))
    wrong = h.submit(url, h.submission("rj", "wrong", user=5))
    assert h.verdict(h.finished(url, right)) == "accepted"
    assert h.verdict(h.finished(url, wrong)) == "wrong_answer"
    changed = ab_package(3)
    changed["tests/03.ans"] = b"34\n"  # a new answer the right solution does not give
    assert h.upload(url, "rj", changed)["version"] == 2
    started = requests.post(f"{url}/api/v2/problems/rj/rejudges", json={"verdict": "accepted"},
                            timeout=30)
    assert started.status_code == 202, started.text
    rejudge = started.json()["data"]
    assert rejudge["version"] == 2 and rejudge["state"] in ("applying", "running")
    end = time.monotonic() + 120
    while rejudge["state"] != "done" and time.monotonic() < end:
        time.sleep(0.2)
        rejudge = requests.get(f"{url}/api/v2/rejudges/{rejudge['id']}", timeout=30
                               ).json()["data"]
    assert rejudge["state"] == "done" and (rejudge["total"], rejudge["done"]) == (1, 1), rejudge
    assert (rejudge["pending"], rejudge["running"]) == (0, 0)
    assert rejudge["changes"] == [{"before": "accepted", "after": "wrong_answer", "tasks": 1}]
    task = h.finished(url, right)
    assert h.verdict(task) == "wrong_answer" and task["execute"]["problem"]["judged"] == 2
    [before] = task["history"]
    assert before["version"] == 1 and before["judgement"]["verdict"] == "accepted"
    assert before["rejudge"] == rejudge["id"] and before["status"] == "success"
    untouched = h.finished(url, wrong)  # filtered out by its verdict
    assert untouched["history"] == [] and untouched["execute"]["problem"]["judged"] == 1
    listed = requests.get(f"{url}/api/v2/problems/rj/rejudges", timeout=30).json()["data"]
    assert [r["id"] for r in listed] == [rejudge["id"]]


TESTLIB_LIKE = b"#define KHALA_TEST_HEADER 1\n"
POLYGON_CHECKER = '#include "testlib.h"\n' + TOKEN_CHECKER.replace(
    "int main", "static_assert(KHALA_TEST_HEADER == 1, \"the header\");\nint main")


def test_a_polygon_package_is_judged_with_its_checker_and_resources(
        env: dict[str, Any]) -> None:
    url = env["url"]
    files = polygon_files(PROBLEM_XML)
    files["files/check.cpp"] = POLYGON_CHECKER.encode()
    files["files/testlib.h"] = TESTLIB_LIKE
    made = h.upload(url, "poly", files)
    version = made["data"]["versions"][-1]
    assert version["origin"] == "polygon" and version["checker"] == "cpp"
    assert any("pretests" in n for n in made["notes"])
    task = h.finished(url, h.submit(url, h.submission("poly", "c")))
    judgement = task["result"]["judgement"]
    assert judgement["verdict"] == "accepted", judgement
    assert [c["verdict"] for c in judgement["cases"]] == ["accepted"] * 4
    wrong = h.finished(url, h.submit(url, h.submission("poly", "wrong")))
    assert h.verdict(wrong) == "wrong_answer"


def test_the_cli_pushes_only_what_changed_and_lists(env: dict[str, Any], tmp_path: Path) -> None:
    files = {"problem.toml": AB_TOML.encode()}
    for i in range(1, 6):  # tests no other test of this module stored
        files[f"tests/{i:02d}.in"] = f"{i} {i * 1000 + 3}\n".encode()
        files[f"tests/{i:02d}.ans"] = f"{i * 1001 + 3}\n".encode()
    root = write_tree(tmp_path / "cli-ab", files)
    command = [sys.executable, "-m", "khala", "problem", "--url", env["url"]]
    first = subprocess.run([*command, "push", str(root)], capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == 0, first.stderr
    assert "cli-ab version 1: sent 10 of 10 files" in first.stdout
    (root / "tests" / "05.ans").write_bytes(b"5009\n")  # one test changed
    second = subprocess.run([*command, "push", str(root)], capture_output=True, text=True,
                            timeout=120)
    assert "cli-ab version 2: sent 1 of 10 files" in second.stdout, second
    listed = subprocess.run([*command, "list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "cli-ab" in listed.stdout
    line = next(x for x in listed.stdout.splitlines() if x.startswith("cli-ab"))
    assert line.split()[1:3] == ["2", "5"]
    stray = write_tree(tmp_path / "stray", {"readme.txt": b"no package here\n"})
    bad = subprocess.run([*command, "push", str(stray)], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "problem.toml" in bad.stderr
