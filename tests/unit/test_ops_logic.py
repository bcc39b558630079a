"""Pure logic of the operations features: the node-authentication handshake over a socket pair,
the keys file, callback URL checks and webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from khala.apikeys import add_key, digest, load_keys, revoke_key
from khala.errors import ConfigError
from khala.judicator.webhooks import check_callback_url, signature
from khala.rpc.auth import AuthError, NodeAuth


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


def test_keys_file_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.toml")
    key, entry = add_key(path, 7, "submit")
    assert key.startswith(f"khala_{entry.id}_") and len(key) > 40
    stored = load_keys(path)
    assert stored[entry.id].sha256 == digest(key) and stored[entry.id].user == 7
    assert key not in Path(path).read_text()
    assert (Path(path).stat().st_mode & 0o777) == 0o600
    with pytest.raises(ConfigError):
        add_key(path, 1, "root")
    assert revoke_key(path, entry.id) and not revoke_key(path, entry.id)
    assert load_keys(path) == {}


def test_malformed_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text('[keys.a]\nsha256 = "x"\nuser = 1\nrole = "owner"\n')
    with pytest.raises(ConfigError, match="unknown role"):
        load_keys(str(path))


@pytest.mark.parametrize("url", ["ftp://h/x", "http:///x", "http://u:p@example.org/",
                                 "http://127.0.0.1/", "http://[::1]/", "http://10.0.0.1/",
                                 "http://169.254.169.254/latest", "http://0.0.0.0/",
                                 "http://localhost:8080/", "http://" + "a" * 2050])
def test_callback_urls_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_callback_url(url, allow_internal=False)


def test_callback_urls_allowed() -> None:
    check_callback_url("http://127.0.0.1:9/hook", allow_internal=True)
    check_callback_url("https://93.184.215.14/hook", allow_internal=False)  # a public address


def test_signature() -> None:
    expected = hmac.new(b"k", b"123.body", hashlib.sha256).hexdigest()
    assert signature(b"k", "123", b"body") == f"sha256={expected}"
