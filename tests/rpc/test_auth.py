"""Node authentication (khala/rpc/auth.py): the handshake over a socket pair."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from khala.errors import ConfigError
from khala.net.deadline import Deadline
from khala.rpc.auth import BUSY, MAGIC, AuthError, NodeAuth


def handshake(client_secret: bytes, server_secret: bytes) -> tuple[Any, Any]:
    a, b = socket.socketpair()
    outcome: dict[str, Any] = {}

    def serve() -> None:
        try:
            outcome["server"] = NodeAuth(server_secret).server_handshake(b)
        except AuthError as exc:
            outcome["server"] = exc
        b.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        NodeAuth(client_secret).client_handshake(a, "executor-1")
        client: Any = "ok"
    except AuthError as exc:
        client = exc
    a.close()
    thread.join(10)
    return client, outcome["server"]


def test_handshake_accepts_the_same_secret_only() -> None:
    assert handshake(b"s" * 32, b"s" * 32) == ("ok", "executor-1")
    client, server = handshake(b"s" * 32, b"t" * 32)
    assert isinstance(client, AuthError) and "does not know" in str(client)
    assert isinstance(server, AuthError)


def test_server_refuses_a_plain_thrift_client() -> None:
    a, b = socket.socketpair()
    a.sendall(b"\x80\x01\x00\x01\x00\x00\x00\x04ping\x00\x00\x00\x00\x00")
    with pytest.raises(AuthError, match="no node-authentication handshake"):
        NodeAuth(b"s" * 32).server_handshake(b)
    a.close()
    b.close()


def test_short_secrets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        NodeAuth(b"short")
    assert NodeAuth.from_file("") is None
    with pytest.raises(ConfigError):
        NodeAuth.from_file(str(tmp_path / "missing"))


def test_a_busy_answer_is_told_apart() -> None:
    """A judicator that checked the proof but has no connection slot answers 0x01."""
    a, b = socket.socketpair()
    outcome: dict[str, Any] = {}

    def serve() -> None:
        outcome["name"] = NodeAuth(b"s" * 32).verify(b, Deadline(10))
        b.sendall(BUSY)

    thread = threading.Thread(target=serve)
    thread.start()
    with pytest.raises(AuthError, match="at its connection limit"):
        NodeAuth(b"s" * 32).client_handshake(a, "gateway")
    thread.join(10)
    assert outcome["name"] == "gateway"
    a.close()
    b.close()


def test_the_server_gives_the_whole_handshake_one_deadline() -> None:
    """Bytes that each come in time do not extend it: what is left of it is all a read gets."""
    a, b = socket.socketpair()
    a.sendall(MAGIC[:5])
    with pytest.raises(AuthError, match="not done within 0.3 s"):
        NodeAuth(b"s" * 32).verify(b, Deadline(0.3))
    a.close()
    b.close()
