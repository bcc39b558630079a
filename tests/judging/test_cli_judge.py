"""`khala submit --language` and `khala get` judge from the command line against a real
cluster whose one executor offers only C; and a task naming a language no live executor
offers is refused at submit with the reason (API v2 422, the CLI's exit 3, Thrift's
InvalidInput)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from khala.errors import InvalidInput
from khala.model import Case, Compile, Execute, Task
from khala.zipcheck import make_zip
from tests.fixtures.cluster import Cluster
from tests.judging.conftest import client_of, wait_languages

pytestmark = pytest.mark.integration

A_PLUS_B = '#include <stdio.h>\nint main(void){int a,b;scanf("%d %d",&a,&b);printf("%d\\n",a+b);}\n'


@pytest.fixture(scope="module")
def only_c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    built = Cluster(tmp_path_factory.mktemp("only-c"))
    try:
        built.start_judicator()
        built.start_executor(slots=2, languages="c")
        built.start_gateway()
        client = client_of(built)
        wait_languages(client, {"c"})
        client.close()
        yield built
    finally:
        built.stop()


def khala(cluster: Cluster, *argv: str, key: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KHALA_URL": cluster.gateway_url}
    env.pop("KHALA_KEY", None)
    if key:
        env["KHALA_KEY"] = key
    return subprocess.run([sys.executable, "-m", "khala", *argv], capture_output=True,
                          text=True, env=env, timeout=180, check=False)


def case_dir(tmp_path: Path, cases: list[tuple[str, str]], name: str = "cases") -> Path:
    directory = tmp_path / name
    directory.mkdir()
    for number, (given, expected) in enumerate(cases, 1):
        (directory / f"{number}.in").write_text(given)
        (directory / f"{number}.out").write_text(expected)
    (directory / "README").write_text("not a case")
    return directory


def program(tmp_path: Path, text: str) -> str:
    path = tmp_path / "main.c"
    path.write_text(text)
    return str(path)


def test_cli_judges_a_directory_and_exits_by_verdict(only_c: Cluster, tmp_path: Path) -> None:
    cases = case_dir(tmp_path, [("1 2\n", "3\n"), ("20 22\n", "42\n")])
    ok = khala(only_c, "submit", program(tmp_path, A_PLUS_B), "--language", "c", "--cases",
               str(cases), "--time", "1.5", "--memory", "64M", "--user", "5")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0].endswith("  Accepted") and lines[1].startswith("score 2/2  time "), lines
    assert [line.split()[:2] for line in lines[-2:]] == [["1", "Accepted"], ["2", "Accepted"]]
    task_id = lines[0].split()[0]
    task = requests.get(f"{only_c.gateway_url}/api/v2/tasks/{task_id}", timeout=30).json()["data"]
    execute = task["execute"]
    assert (execute["cpu_limit"], execute["timeout"], execute["memory_limit"]) == (1.5, 4, 64 << 20)
    assert task["user"] == 5

    wrong = khala(only_c, "submit", program(tmp_path, A_PLUS_B.replace("a+b", "a*b")),
                  "--language", "c", "--cases", str(cases))
    assert wrong.returncode == 1, wrong.stderr
    assert wrong.stdout.splitlines()[0].endswith("  Wrong answer on case 1"), wrong.stdout
    assert "got '2', expected '3'" in wrong.stdout

    got = khala(only_c, "get", wrong.stdout.split()[0])
    assert got.returncode == 1 and got.stdout == wrong.stdout
    as_json = khala(only_c, "get", task_id, "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["result"]["judgement"]["verdict"] == "accepted"


def test_cli_compile_error_case_files_and_usage(only_c: Cluster, tmp_path: Path) -> None:
    (tmp_path / "a.in").write_text("2 2")
    (tmp_path / "a.out").write_text("4")
    broken = khala(only_c, "submit", program(tmp_path, "int main( {"), "--language", "c",
                   "--case", f"{tmp_path / 'a.in'}:{tmp_path / 'a.out'}", "--json")
    assert broken.returncode == 1, broken.stderr
    judgement = json.loads(broken.stdout)["result"]["judgement"]
    assert judgement["verdict"] == "compile_error"
    fine = khala(only_c, "submit", program(tmp_path, A_PLUS_B), "--language", "c",
                 "--case", f"{tmp_path / 'a.in'}:{tmp_path / 'a.out'}")
    assert fine.returncode == 0 and "Accepted" in fine.stdout.splitlines()[0], fine.stderr
    no_cases = khala(only_c, "submit", program(tmp_path, A_PLUS_B), "--language", "c")
    assert no_cases.returncode == 2 and "give test cases" in no_cases.stderr
    bad_size = khala(only_c, "submit", program(tmp_path, A_PLUS_B), "--language", "c",
                     "--cases", str(case_dir(tmp_path, [("1 1", "2")])), "--memory", "lots")
    assert bad_size.returncode == 2 and "not a size" in bad_size.stderr


def test_cli_shows_a_command_task_output_through_the_stream(only_c: Cluster) -> None:
    ran = khala(only_c, "submit", "--execute", "echo streamed; echo oops >&2; exit 3", "--wait")
    assert ran.returncode == 1
    assert "streamed\n" in ran.stdout and "run_failed" in ran.stdout
    # the event stream showed it on stderr as it ran, with the status changes
    assert "streamed\n" in ran.stderr and "[run_failed]" in ran.stderr, ran.stderr


def test_a_language_no_executor_offers_is_refused(only_c: Cluster, tmp_path: Path) -> None:
    body = {"compile": {"language": "python3", "files": [{"path": "main.py",
                                                          "content": "print(3)"}]},
            "execute": {"cases": [{"input": "", "standard": "3"}]}}
    reply = requests.post(f"{only_c.gateway_url}/api/v2/tasks", json=body, timeout=30)
    assert reply.status_code == 422, reply.text
    detail = reply.json()["errors"][0]["detail"]
    assert detail == "compile.language: no live executor offers 'python3' (offered now: c)"
    listed = requests.get(f"{only_c.gateway_url}/api/v2/languages", timeout=30).json()["data"]
    assert [(x["name"], x["offered_by"], x["source_file"]) for x in listed] == [
        ("c", [only_c.executors[0].argv[only_c.executors[0].argv.index("--name") + 1]],
         "main.c")]
    (tmp_path / "main.py").write_text("print(3)")
    cli = khala(only_c, "submit", str(tmp_path / "main.py"), "--language", "python3",
                "--cases", str(case_dir(tmp_path, [("", "3")])))
    assert cli.returncode == 3 and "no live executor offers 'python3'" in cli.stderr
    # the Thrift API refuses it the same way (the seed's add: result 4)
    client = client_of(only_c)
    try:
        task = Task(user=1, compile=Compile(source=make_zip("main.py", "print(3)"),
                                            language="python3"),
                    execute=Execute(cases=[Case(standard="3")]))
        with pytest.raises(InvalidInput):
            client.add(task)
    finally:
        client.close()
    # A language offered is taken as before.
    ok = requests.post(f"{only_c.gateway_url}/api/v2/tasks", json={
        "compile": {"language": "c", "files": [{"path": "main.c", "content": A_PLUS_B}]},
        "execute": {"cases": [{"input": "1 1", "standard": "2"}]}}, timeout=30)
    assert ok.status_code == 201
    deadline = time.monotonic() + 120
    while not (task_now := requests.get(
            f"{only_c.gateway_url}/api/v2/tasks/{ok.json()['data']['id']}?wait=10",
            timeout=30).json()["data"])["done"]:
        assert time.monotonic() < deadline
    assert task_now["result"]["judgement"]["verdict"] == "accepted"


