"""The executors' stream endpoints against strangers, through real nodes (etcd, a judicator, an
executor and a gateway as processes): with a cluster secret, a client that does not prove it
neither reads a running task's output nor takes its input over, and the owner's pow-1 session
goes on; with or without it, connections that drip their first bytes take none of the
endpoint's slots, so live output and input go on while they drip."""

from __future__ import annotations

import contextlib
import json
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from khala.config import DiscoverySettings
from khala.rpc.auth import MAGIC, AuthError, NodeAuth, write_secret_file
from khala.streams.client import StreamConnection
from khala.streams.log import new_position
from khala.streams.registry import EndpointLookup
from tests.fixtures.cluster import Cluster
from tests.fixtures.drip import Drippers

pytestmark = pytest.mark.integration

ECHO = "python3 -c 'import sys\nfor line in sys.stdin: print(\"echo\", line.strip(), flush=True)'"
EXECUTOR = "executor-s"
#: 70 connections, from ten addresses (seven each), one byte every 2 s.
ATTACKERS = [f"127.0.0.{i}" for i in range(2, 12)]


def start(tmp: Path, etcd_url: str, secret: str | None) -> Cluster:
    auth = {"cluster_secret_file": secret} if secret else {}
    c = Cluster(tmp, etcd_url=etcd_url, prefix=f"/khala-test-{uuid.uuid4().hex[:12]}")
    c.start_judicator(**auth)
    c.start_executor(slots=2, name=EXECUTOR, **auth)
    c.start_gateway(**auth)
    return c


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, etcd_server: Any) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("secured")
    secret = str(tmp / "cluster.secret")
    write_secret_file(secret)
    c = start(tmp, etcd_server.url, secret)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def unsecured(tmp_path_factory: pytest.TempPathFactory, etcd_server: Any) -> Iterator[Cluster]:
    c = start(tmp_path_factory.mktemp("unsecured"), etcd_server.url, None)
    try:
        yield c
    finally:
        c.stop()


def endpoint(c: Cluster) -> str:
    """The executor's stream endpoint as etcd has it (what any stranger can read there), once
    the executor registered it."""
    lookup = EndpointLookup(DiscoverySettings(etcd=c.etcd_url, prefix=c.prefix))
    deadline = time.monotonic() + 60
    while (address := lookup.find(EXECUTOR)) is None:
        assert time.monotonic() < deadline, c.logs()
        time.sleep(0.2)
    return address


@contextlib.contextmanager
def open_session(c: Cluster) -> Iterator[ClientConnection]:
    """An owner's pow-1 session of an interactive echo program, its first line echoed."""
    with connect(c.gateway_url.replace("http://", "ws://") + "/api/v2/pow",
                 subprotocols=["pow-1"]) as ws:
        body = {"compile": {"command": "true"},
                "execute": {"command": ECHO, "timeout": 120, "interactive": True}}
        ws.send(json.dumps({"call": "task", "params": [json.dumps(body)]}).encode())
        ws.send("alpha\n")
        assert ws.recv(timeout=60) == "echo alpha\n"
        yield ws


def finish_session(ws: ClientConnection) -> dict[str, Any]:
    """Type one more line, close the input; the task's result."""
    ws.send("omega\n")
    assert ws.recv(timeout=60) == "echo omega\n"
    ws.send(json.dumps({"signal": "close"}).encode())
    while isinstance(message := ws.recv(timeout=60), str):
        pass
    return json.loads(message)  # type: ignore[no-any-return]


def running_task(c: Cluster) -> dict[str, Any]:
    tasks = requests.get(f"{c.gateway_url}/api/v2/tasks?limit=1", timeout=10).json()["data"]
    assert tasks and not tasks[0]["done"] and tasks[0]["executor"] == EXECUTOR, tasks
    return tasks[0]  # type: ignore[no-any-return]


def stdout(c: Cluster, task_id: str) -> str:
    reply = requests.get(f"{c.gateway_url}/api/v2/tasks/{task_id}/outputs/execute/stdout",
                         timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.text


def test_a_stranger_can_neither_follow_nor_type_into_a_task(secured: Cluster) -> None:
    with open_session(secured) as ws:
        task = running_task(secured)
        address = endpoint(secured)
        # No handshake at all: a plain follow frame asking for the output and the input.
        stranger = StreamConnection(address, task["seed_id"], new_position(), True, "stranger")
        first = next(stranger.frames(), None)
        stranger.close()
        assert first is None, first  # closed unanswered: no `input`, no chunk, no `unknown`
        # A wrong secret.
        wrong = NodeAuth(b"not-the-cluster-secret-at-all!!!")
        with pytest.raises(AuthError):
            StreamConnection(address, task["seed_id"], new_position(), True, "stranger",
                             auth=wrong)
        result = finish_session(ws)  # the owner still holds the input
    assert result["status"] == "fulfilled", result
    assert stdout(secured, task["seed_id"]) == "echo alpha\necho omega\n"
    assert "refused a stream connection" in secured.executors[0].log()


def test_dripped_handshakes_take_no_stream_slot(secured: Cluster) -> None:
    port = int(endpoint(secured).rsplit(":", 1)[1])
    drippers = Drippers(port, ATTACKERS, 70, MAGIC + bytes(32), 2.0)
    drippers.start()
    try:
        drippers.wait_rounds(3)
        with open_session(secured) as ws:
            result = finish_session(ws)
        assert drippers.open_now() > 0  # the attack went on all along
    finally:
        drippers.stop()
    assert result["status"] == "fulfilled", result
    assert drippers.dropped > 0, "drippers were never cut off"


def test_dripped_first_frames_take_no_stream_slot(unsecured: Cluster) -> None:
    """Without a secret: a frame head announcing a large header, one byte every 2 s."""
    port = int(endpoint(unsecured).rsplit(":", 1)[1])
    head = struct.pack(">II", 4000, 0) + b" " * 4000
    drippers = Drippers(port, ATTACKERS, 70, head, 2.0)
    drippers.start()
    try:
        drippers.wait_rounds(3)
        with open_session(unsecured) as ws:
            result = finish_session(ws)
        assert drippers.open_now() > 0
    finally:
        drippers.stop()
    assert result["status"] == "fulfilled", result
    assert drippers.dropped > 0, "drippers were never cut off"
