"""Files out (`execute.outputs`) through a real cluster: named files a run writes come back
byte for byte (binary included) over Thrift and API v2; a missing file, a symlink and a file
over the output limit are reported, never followed or cut; a checker reads a judged case's
files (an output-only problem)."""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
import requests

from khala.model import (
    Case,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    Reason,
    Status,
    Task,
    Verdict,
)
from khala.zipcheck import make_zip_files
from tests.judging.conftest import Judging, task_of

pytestmark = pytest.mark.integration  # a real cluster (the `judging` fixture)

BLOB = bytes(range(256)) * 64 + random.Random(7).randbytes(150_000)  # every byte value
COMMAND = ("mkdir -p out && cp data/blob.bin out/blob.bin && printf 'text\\r\\nno newline' "
           "> note.txt && ln -s /etc/passwd link.txt && mkdir dir.out && echo done")
OUTPUTS = ["out/blob.bin", "note.txt", "link.txt", "missing.txt", "dir.out"]


def plain_task(**execute: Any) -> Task:
    return Task(user=1, compile=Compile(command="true", timeout=30),
                execute=Execute(command=COMMAND, timeout=30,
                                data=make_zip_files([("blob.bin", BLOB)]), outputs=OUTPUTS,
                                **execute))


def test_files_come_back_byte_exact(judging: Judging) -> None:
    done = judging.judge(plain_task())
    assert done.status == Status.SUCCESS and done.result is not None, done
    files = {f.name: f for f in done.result.files}
    assert list(files) == OUTPUTS
    assert files["out/blob.bin"].content == BLOB and files["out/blob.bin"].size == len(BLOB)
    assert files["note.txt"].content == b"text\r\nno newline" and files["note.txt"].error == ""
    assert (files["link.txt"].content, files["link.txt"].error) == (b"", "not a regular file")
    assert files["missing.txt"].error == "missing"
    assert files["dir.out"].error == "not a regular file"
    assert done.result.execute_output == b"done\n"


def test_a_file_over_the_output_limit_fails_the_run(judging: Judging) -> None:
    done = judging.judge(plain_task(output_limit=100_000))
    assert done.result is not None and done.result.execute_report is not None
    assert done.status == Status.RUN_FAILED
    assert done.result.execute_report.reason == Reason.OUTPUT_LIMIT
    blob = done.result.files[0]
    assert (blob.name, blob.content, blob.size) == ("out/blob.bin", b"", len(BLOB))
    assert blob.error == "larger than the output limit"


def test_files_in_api_v2(judging: Judging) -> None:
    base = judging.cluster.gateway_url
    body = {
        "compile": {"command": "true"},
        "execute": {"command": COMMAND, "timeout": 30, "outputs": OUTPUTS,
                    "files": [{"path": "blob.bin", "encoding": "base64",
                               "content": base64.b64encode(BLOB).decode()}]},
    }
    created = requests.post(f"{base}/api/v2/tasks", json=body, timeout=30)
    assert created.status_code == 201, created.text
    ref = created.json()["data"]["id"]
    assert created.json()["data"]["execute"]["outputs"] == OUTPUTS
    data: dict[str, Any] = {}
    for _ in range(20):
        data = requests.get(f"{base}/api/v2/tasks/{ref}", params={"wait": 30},
                            timeout=60).json()["data"]
        if data["done"]:
            break
    files = data["result"]["files"]
    assert [f["name"] for f in files] == OUTPUTS
    assert base64.b64decode(files[0]["content"]) == BLOB and files[0]["error"] is None
    assert files[3] == {"name": "missing.txt", "size": 0, "content": None, "error": "missing"}


def test_bad_output_names_are_refused(judging: Judging) -> None:
    base = judging.cluster.gateway_url
    for name in ("/etc/passwd", "../up", "a//b", ""):
        body = {"compile": {"command": "true"},
                "execute": {"command": "true", "outputs": [name]}}
        answer = requests.post(f"{base}/api/v2/tasks", json=body, timeout=30)
        assert answer.status_code == 422, (name, answer.text)
        assert "output file" in answer.text


# An output-only problem: the program writes its answer to a file, the checker reads it there.
WRITER = ("n = int(input())\n"
          "open('answer.out', 'w').write(str(n * n if n != 3 else 0) + '\\n')\n")
FILE_CHECKER = ("import os, sys\n"
                "path = os.path.join('outputs', 'answer.out')\n"
                "if not os.path.exists(path):\n"
                "    print('no answer.out', file=sys.stderr); sys.exit(1)\n"
                "got, want = open(path).read().split(), open(sys.argv[3]).read().split()\n"
                "print(f'got {got}, want {want}', file=sys.stderr)\n"
                "sys.exit(0 if got == want else 1)\n")


def test_a_checker_reads_the_files_out(judging: Judging) -> None:
    cases = [Case(input=f"{n}\n", standard=f"{n * n}\n") for n in (2, 3, 4)]
    compare = Compare(mode=CompareMode.CHECKER, checker=Checker("python3", FILE_CHECKER))
    done = judging.judge(task_of("python3", "main.py", WRITER, cases, compare,
                                 outputs=["answer.out"]))
    j = done.result.judgement if done.result else None
    assert j is not None, done
    assert [c.verdict for c in j.cases] == [Verdict.ACCEPTED, Verdict.WRONG_ANSWER,
                                            Verdict.ACCEPTED], j
    assert [c.files[0].content for c in j.cases] == [b"4\n", b"0\n", b"16\n"]
    assert "got ['0'], want ['9']" in j.cases[1].message
