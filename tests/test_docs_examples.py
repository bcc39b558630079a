"""Every fenced `sh` example of README.md and docs/http-api.md, run against a live cluster as a
reader would: `khala up` (what `make run` starts) on a free port, each file's examples pasted in
order into one bash (later ones use the shell variables earlier ones set), from the checkout.

A block passes when it exits 0 under `set -euo pipefail` and prints no refusal the example does
not announce; the examples' own claims are checked below (the verdicts, outputs and codes their
`#` comments show). `bash` blocks (make run, make test) set things up and are not run here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from khala.cli.up import free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
MARK = "@@khala-example@@"


def sh_blocks(path: Path) -> list[str]:
    return FENCE.findall(path.read_text())


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("up")
    port = free_port()
    with open(tmp / "up.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "khala", "up", "--port", str(port), "--data-dir",
             str(tmp / "data"), "--executors", "1"], stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            languages: list[str] = []
            while "c" not in languages:
                assert time.monotonic() < deadline and proc.poll() is None, (
                    (tmp / "up.log").read_text()[-3000:])
                try:
                    listed = requests.get(f"{base}/api/v2/languages", timeout=2).json()
                    languages = [x["name"] for x in listed.get("data", [])]
                except (requests.RequestException, ValueError):
                    pass
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            proc.wait(60)


def run_examples(base: str, doc: Path) -> list[str]:
    """The output of each `sh` block of `doc`, run in order in one bash."""
    port = base.rsplit(":", 1)[1]
    script = ["set -euo pipefail"]
    for block in sh_blocks(doc):
        script += [f"echo {MARK}", block.replace("127.0.0.1:7000", f"127.0.0.1:{port}")]
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    env.pop("KHALA_KEY", None)
    env["KHALA_URL"] = base  # the CLI's default is the http://127.0.0.1:7000 of `make run`
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    outputs = done.stdout.split(MARK + "\n")[1:]
    assert done.returncode == 0, (
        f"example {len(outputs)} of {doc.name} failed (exit {done.returncode}):\n"
        f"{sh_blocks(doc)[len(outputs) - 1]}\nstdout:\n{outputs[-1:]}\nstderr:\n{done.stderr}")
    assert len(outputs) == len(sh_blocks(doc))
    return outputs


def test_readme_examples(up: str) -> None:
    judged, cli, seed = run_examples(up, REPO / "README.md")
    assert judged.splitlines() == ["aplusb", '{"verdict":"accepted","score":2,"max_score":2}'], (
        judged)
    lines = cli.splitlines()
    assert lines[0].endswith("  Wrong answer on case 2") and lines[1].startswith("score 1/2 ")
    assert lines[-3].split()[:2] == ["1", "Accepted"]
    assert lines[-2].split()[:3] == ["2", "Wrong", "answer"]
    assert lines[-2].endswith("line 1: got '6', expected '5'") and lines[-1] == "exit 1", cli
    assert seed == '{"status":5,"out":"5\\n"}\n', seed


def test_http_api_examples(up: str) -> None:
    outputs = run_examples(up, REPO / "docs" / "http-api.md")
    test, submit, cancel, search, get, download, executors, judicators = outputs
    assert test == "Khala gateway server is working."
    task_id, uploaded, refused = submit.splitlines()
    assert re.fullmatch(r"[0-9a-f]{24}", task_id), submit
    assert '"result":0' in uploaded.replace(" ", "")
    assert '"error":"compile_timeout must be' in refused and '"result":4' in refused
    assert cancel.strip() == '{"result":0}'
    assert '"result":0' in search.replace(" ", "") and task_id in search
    task = requests.get(f"{up}/api/task", params={"id": task_id}, timeout=10).json()["task"]
    assert f'"id":"{task_id}"' in get.replace(" ", "") and task["status"] == 5
    assert task["result"]["execute_output"] == "3\n"
    assert download.strip() == f"{task_id}_execute_output.txt"
    for listing in (executors, judicators):
        assert '"result":0' in listing.replace(" ", ""), listing
    # the archives example builds with make and reads its data file: 2 + 40
    zipped = json.loads(uploaded)["id"]
    done = requests.get(f"{up}/api/v2/tasks/{zipped}?wait=30", timeout=60).json()["data"]
    assert done["status"] == "success", done
    out = requests.get(f"{up}/api/v2/tasks/{zipped}/outputs/execute/stdout", timeout=10)
    assert out.content == b"42\n"
