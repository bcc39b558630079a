"""Meproc's /proc (seed 003) through a client written from its wiki page alone
(tests/seeds/clients/meproc.py), against a real cluster: `user`/`group` run the processes as
the host ids the operator allows (seen in /proc of the real pid), stop keeps the task listed,
restart starts a stopped task again, refusals say why. The executor runs on this host, so its
processes' pids are this host's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.seeds.clients.meproc import Meproc, MeprocError
from tests.seeds.conftest import Seeds

pytestmark = pytest.mark.integration

SEED_FIELDS = {"name", "cmd", "type", "replica", "user", "deps", "interval", "last_time",
               "run_flag", "start_time", "running", "group"}


def until(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")


@pytest.fixture(scope="module")
def client(seeds: Seeds) -> Meproc:
    return Meproc(seeds.url, seeds.headers())


def name() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def processes(client: Meproc, task: str) -> list[dict[str, Any]]:
    return [r for r in client.show()["running"] if r["alias"].startswith(task + ":")]


def ids_of(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {line.split(":")[0]: line.split()[1:] for line in status.splitlines()}
    return int(fields["Uid"][0]), int(fields["Gid"][0])


def test_user_and_group_run_the_processes_with_their_real_pids(client: Meproc) -> None:
    task = name()
    client.start(task, "sleep 600", "daemon", replica=2, user="guest", group="guests")
    running = until(lambda: len(p := [r for r in processes(client, task) if r["pid"]]) == 2
                    and p, "two processes with pids")
    for process in running:
        assert process["command"] == "sleep 600"
        assert ids_of(process["pid"]) == (1234, 1235)  # the table's guest, in guests
    shown = client.show()["tasks"][task]
    assert set(shown) >= SEED_FIELDS and set(shown) - SEED_FIELDS <= {"cron", "status"}
    assert (shown["user"], shown["group"], shown["running"], shown["run_flag"]) == (
        "guest", "guests", 2, True)
    client.stop(task)
    assert client.show()["tasks"][task]["run_flag"] is False  # at once: none starts again
    until(lambda: not processes(client, task), "the processes stopped")  # listed till then
    stopped = client.show()["tasks"][task]  # stop keeps the task listed
    assert (stopped["running"], stopped["run_flag"]) == (0, False)
    for process in running:  # its processes are gone (a pid may be reused: not by sleep)
        assert not sleeping(process["pid"])
    client.restart(task)  # a stopped task starts again
    again = until(lambda: len(p := [r for r in processes(client, task) if r["pid"]]) == 2
                  and p, "restarted processes")
    assert {r["pid"] for r in again}.isdisjoint({r["pid"] for r in running})
    assert client.show()["tasks"][task]["run_flag"] is True
    client.stop(task)


def test_restart_of_a_running_task_replaces_its_process(client: Meproc) -> None:
    task = name()
    client.start(task, "sleep 600", "daemon")
    first = until(lambda: [r["pid"] for r in processes(client, task) if r["pid"]],
                  "a process")
    client.restart(task)
    until(lambda: [r["pid"] for r in processes(client, task)
                   if r["pid"] and r["pid"] not in first], "a new process")
    until(lambda: not sleeping(first[0]), "the old process ended")
    client.stop(task)


def sleeping(pid: int) -> bool:
    try:
        return b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_without_user_the_sandbox_user_runs_it(client: Meproc) -> None:
    task = name()
    client.start(task, "sleep 600", "daemon")
    pid = until(lambda: [r["pid"] for r in processes(client, task) if r["pid"]], "a pid")[0]
    assert ids_of(pid) == (65534, 65534)
    assert client.show()["tasks"][task]["user"] is None
    client.stop(task)


@pytest.mark.parametrize(("fields", "words"), [
    ({"user": "root"}, "user 'root' is not one this cluster runs tasks as"),
    ({"group": "wheel"}, "group 'wheel' is not one this cluster runs tasks as"),
    ({"type": "melang", "cmd": "/srv/a.m"}, "type melang"),
])
def test_refusals_say_why(client: Meproc, fields: dict[str, Any], words: str) -> None:
    task = name()
    with pytest.raises(MeprocError) as refused:
        client.start(task, **{"cmd": "true", **fields})
    assert refused.value.code == 400 and words in str(refused.value.msg)
    assert task not in client.show()["tasks"]


def test_a_once_task_ends_and_stays_listed(client: Meproc) -> None:
    task = name()
    client.start(task, "echo done", "once")
    until(lambda: client.show()["tasks"][task]["last_time"], "its run ended")
    shown = client.show()["tasks"][task]
    assert shown["running"] == 0 and isinstance(shown["start_time"], int)


def test_behind_the_same_keys(seeds: Seeds) -> None:
    assert requests.get(f"{seeds.url}/proc", timeout=30).status_code == 401
    with pytest.raises(MeprocError) as refused:
        Meproc(seeds.url, seeds.headers("submit")).show()
    assert refused.value.code == 403
