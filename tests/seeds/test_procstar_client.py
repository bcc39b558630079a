"""Procstar's API (seed 000) at /procs, through a client written from the seed text alone
(tests/seeds/clients/procstar.py), against a real cluster: every route, results with every
rusage field measured, output read while the process runs, outputs compressed as asked, core
files only when asked, and the same API keys as the rest."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.seeds.clients.procstar import Procstar, ProcstarError
from tests.seeds.conftest import Seeds

pytestmark = pytest.mark.integration

RUSAGE = {"utime", "stime", "maxrss", "ixrss", "idrss", "isrss", "minflt", "majflt", "nswap",
          "inblock", "oublock", "msgsnd", "msgrcv", "nsignals", "nvcsw", "nivcsw"}
TICKER = ("import sys, time\n"
          "for i in range(600):\n"
          "    print('line', i, flush=True)\n"
          "    time.sleep(0.1)\n")
WORK = ("import time\n"
        "block = bytearray(64 * 1024 * 1024)\n"
        "for i in range(0, len(block), 4096): block[i] = 1\n"
        "print(sum(range(2_000_000)))\n"
        "time.sleep(0.05)\n")


def until(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def completed(client: Procstar, proc_id: str) -> dict[str, Any]:
    return until(lambda: (p := client.proc(proc_id))["status"] is not None and p,  # type: ignore[return-value]
                 f"process {proc_id} completed")


@pytest.fixture(scope="module")
def client(seeds: Seeds) -> Procstar:
    return Procstar(seeds.url, seeds.headers())


def test_a_completed_process_has_every_rusage_field(client: Procstar) -> None:
    proc_id, started = client.start({"argv": ["python3", "-c", WORK]})
    assert started["status"] is None and started["rusage"] is None
    proc = completed(client, proc_id)
    assert proc["errors"] == [] and isinstance(proc["pid"], int) and proc["pid"] > 0
    status = proc["status"]
    assert (status["status"], status["exit_code"], status["signum"], status["core_dump"]) == (
        0, 0, None, False)
    usage = proc["rusage"]
    assert set(usage) == RUSAGE and all(isinstance(v, int | float) for v in usage.values())
    assert usage["utime"] > 0 and usage["maxrss"] >= 64 * 1024 * 1024
    assert usage["minflt"] > 0 and usage["nvcsw"] > 0
    assert proc["fds"]["stdout"]["length"] == len(b"1999999000000\n")


def test_output_while_it_runs_then_signal_and_delete(client: Procstar) -> None:
    proc_id, _ = client.start({"argv": ["python3", "-u", "-c", TICKER]}, "ticker")
    # a process with this id exists: 400
    with pytest.raises(ProcstarError) as taken:
        client.start({"argv": ["true"]}, "ticker")
    assert taken.value.status == 400
    seen = until(lambda: (out := client.output(proc_id, "stdout")[0]).count(b"\n") >= 3 and out,
                 "three lines while it runs")
    assert seen.startswith(b"line 0\nline 1\nline 2\n")
    proc = client.proc(proc_id)
    assert proc["status"] is None and isinstance(proc["pid"], int)  # still running
    live = client.fd(proc_id, "stdout")
    assert live["text"].startswith("line 0\n")
    with pytest.raises(ProcstarError) as running:
        client.delete(proc_id)
    assert running.value.status == 409
    client.signal(proc_id, "SIGTERM")
    proc = completed(client, proc_id)
    assert proc["status"]["signum"] == 15 and proc["status"]["exit_code"] is None
    assert os.WIFSIGNALED(proc["status"]["status"]) and set(proc["rusage"]) == RUSAGE
    assert None not in proc["rusage"].values()
    with pytest.raises(ProcstarError) as done:
        client.signal(proc_id, "SIGTERM")
    assert done.value.status == 409
    client.delete(proc_id)
    with pytest.raises(ProcstarError) as gone:
        client.proc(proc_id)
    assert gone.value.status == 404


def test_outputs_in_every_encoding_and_the_listing(client: Procstar) -> None:
    text = "".join(f"row {i}\n" for i in range(2000))
    proc_id, _ = client.start({"argv": ["python3", "-c", f"print({text!r}, end='')"],
                               "env": {"vars": {"LANG": "C.UTF-8"}}}, "rows")
    completed(client, proc_id)
    plain, coding = client.output(proc_id, "stdout")
    assert plain == text.encode() and coding == ""
    for asked in ("gz", "br"):
        body, coding = client.output(proc_id, "stdout", asked)
        assert body == text.encode() and coding in ("gzip", "br") and coding[:2] == asked[:2]
    assert client.output(proc_id, "2")[0] == b""
    listed = client.procs()
    assert "rows" in listed and "text" not in listed["rows"]["fds"]["stdout"]
    with_text = client.procs(fds=True)["rows"]["fds"]["stdout"]
    assert with_text["text"] == text


def test_environment_and_exit_codes(client: Procstar) -> None:
    proc_id, _ = client.start({"argv": ["sh", "-c", 'echo "$GREETING"; exit 7'],
                               "env": {"vars": {"GREETING": "hi there"}}})
    proc = completed(client, proc_id)
    assert proc["status"]["exit_code"] == 7 and proc["status"]["status"] == 7 << 8
    assert client.output(proc_id, "stdout")[0] == b"hi there\n"


@pytest.mark.parametrize("core_limit", [None, 4 * 1024 * 1024])
def test_core_dump_only_when_asked(client: Procstar, core_limit: int | None) -> None:
    spec: dict[str, Any] = {"argv": ["python3", "-c", "import os; os.abort()"]}
    if core_limit:
        spec["core_limit"] = core_limit
    proc = completed(client, client.start(spec)[0])
    assert proc["status"]["signum"] == 6
    assert proc["status"]["core_dump"] is bool(core_limit)
    assert bool(os.WCOREDUMP(proc["status"]["status"])) is bool(core_limit)


def test_behind_the_same_keys(seeds: Seeds, client: Procstar) -> None:
    assert requests.get(f"{seeds.url}/procs", timeout=30).status_code == 401
    reader = Procstar(seeds.url, seeds.headers("read"))
    with pytest.raises(ProcstarError) as refused:
        reader.start({"argv": ["true"]})
    assert refused.value.status == 403
    mine = Procstar(seeds.url, seeds.headers("submit"))
    theirs = Procstar(seeds.url, seeds.headers("other"))
    proc_id, _ = mine.start({"argv": ["true"]})
    assert proc_id in mine.procs() and proc_id not in theirs.procs()
    with pytest.raises(ProcstarError) as hidden:
        theirs.proc(proc_id)
    assert hidden.value.status == 404
    assert proc_id in reader.procs()
