"""Node authentication through real nodes: with a cluster secret, a fake executor (an
unauthenticated Thrift client, or one with a wrong secret) cannot report a result, and is
logged; the real cluster, all nodes proving the secret, runs tasks as before."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from thriftpy2.transport import TTransportException

from khala.rpc import judicator_thrift as T
from khala.rpc.auth import AuthError, NodeAuth, write_secret_file
from khala.rpc.failover import Connection

pytestmark = pytest.mark.integration


def fake_result(task_id: str) -> Any:
    z = zlib.compress
    return T.Task(id=task_id, done=True, status=5, executor="fake-executor",
                  result=T.Result(compile_output=z(b""), compile_error=z(b""),
                                  execute_output=z(b"forged"), execute_error=z(b"")))


def wait_log(node: Any, needles: list[str], seconds: float = 10.0) -> None:
    """The refusals are logged by the judicator's connection threads: wait for them."""
    deadline = time.monotonic() + seconds
    while not all(n in node.log() for n in needles):
        assert time.monotonic() < deadline, node.log()
        time.sleep(0.05)


def test_fake_executor_refused_and_logged(cluster_factory: Any, tmp_path: Path) -> None:
    secret = str(tmp_path / "cluster.secret")
    assert write_secret_file(secret)
    c = cluster_factory()
    c.start_judicator(cluster_secret_file=secret)
    c.start_gateway(cluster_secret_file=secret)
    task_id = c.submit(execute_command="echo real")  # the gateway proves the secret too
    address = c.judicator_address

    # An old-style client that knows nothing of the handshake.
    with pytest.raises((TTransportException, OSError, EOFError)):
        Connection(address, 5.0).client.report(
            "fake-executor", [fake_result(task_id)], [], 1, 0)
    # A client proving a wrong secret.
    wrong = NodeAuth(b"not-the-cluster-secret-at-all")
    with pytest.raises(AuthError):
        Connection(address, 5.0, wrong, "fake-executor")

    wait_log(c.judicators[0], ["no node-authentication handshake", "no proof of the cluster"])
    task = c.get(task_id)["task"]
    assert task["status"] == 0 and not task["done"] and not task["executor"], task

    # A client with the right secret is served (here: ping), and the real executor runs it.
    right = NodeAuth.from_file(secret)
    assert Connection(address, 5.0, right, "probe").client.ping() == 0
    c.start_executor(cluster_secret_file=secret)
    done = c.wait_done(task_id)
    assert done["status"] == 5 and done["result"]["execute_output"] == "real\n", done
    assert "fake-executor" not in str(c.get(task_id)), "the forged report left a trace"


def test_a_secret_client_cannot_talk_to_an_open_judicator(cluster_factory: Any,
                                                          tmp_path: Path) -> None:
    """Misconfiguration is loud, not silent: a node with a secret refuses a judicator that
    cannot prove it (e.g. an impostor listening on the judicator's address)."""
    secret = str(tmp_path / "cluster.secret")
    write_secret_file(secret)
    c = cluster_factory()
    c.start_judicator()
    started = time.monotonic()
    with pytest.raises((AuthError, TTransportException, OSError, EOFError)):
        Connection(c.judicator_address, 5.0, NodeAuth.from_file(secret), "x")
    assert time.monotonic() - started < 10
