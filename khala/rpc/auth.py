"""Node authentication for the Judicator Thrift service: a shared cluster secret, proved by a
challenge-response handshake at the start of every connection, before any Thrift byte.

    client → server  MAGIC, client nonce (32 bytes), name length (1 byte), name (UTF-8)
    server → client  server nonce (32), HMAC-SHA256(secret, "server" ‖ client nonce ‖ server nonce)
    client → server  HMAC-SHA256(secret, "client" ‖ server nonce ‖ client nonce ‖ name)
    server → client  one byte 0 (accepted), or 1 (busy: no connection slot free, the client
                     goes elsewhere); then the connection carries Thrift as usual

The server side has one deadline for all of it (`Deadline`, from the accept on), not a timeout
per read, so a client dripping its bytes is cut off when the deadline passes; the server's
acceptor bounds how many connections may be in the handshake at once (khala/net/acceptor.py).
The same handshake guards an executor's stream endpoint (khala/streams/hub.py).

Both sides prove they hold the secret (mutual) and neither ever sends it; fresh nonces on both
sides make a recorded handshake useless. Every call on the connection is then a call of an
authenticated node. What it does not do: encrypt or integrity-protect the calls that follow
(docs/security.md, "Trust model"). Without a secret configured nothing changes on the wire, so
clients that know nothing of this keep working against judicators that do not require it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import struct

from khala.errors import ConfigError, KhalaError
from khala.net.deadline import Deadline, recv_exact, send_all

log = logging.getLogger(__name__)

MAGIC = b"KHALA-NODE-AUTH/1\n"
NONCE_BYTES = 32
MAC_BYTES = 32
#: Seconds a client gives the whole handshake (the server's own deadline is its setting).
HANDSHAKE_SECONDS = 5.0
#: Shortest secret accepted (bytes of the file, surrounding whitespace stripped).
MIN_SECRET_BYTES = 16
ACCEPTED = b"\x00"
BUSY = b"\x01"


class AuthError(KhalaError):
    """A handshake failed: the peer does not prove the cluster secret (or speaks no handshake).
    `quiet`: nothing was sent at all (a port probe), not worth a warning."""

    def __init__(self, message: str, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


class _Closed(AuthError):
    """The peer closed the connection before the handshake was done."""


def _recv_exact(sock: socket.socket, size: int, deadline: Deadline) -> bytes:
    try:
        return recv_exact(sock, size, deadline)
    except EOFError:
        raise _Closed("connection closed in the middle of the handshake") from None
    except TimeoutError:
        raise AuthError(f"handshake not done within {deadline.seconds:g} s") from None


def is_loopback(host: str) -> bool:
    """Whether a listen host is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_secret() -> str:
    """A fresh cluster secret (64 hex characters, 256 bits)."""
    return secrets.token_hex(32)


def write_secret_file(path: str) -> bool:
    """Create `path` (mode 0600) holding a new secret unless it exists; True if created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(new_secret() + "\n")
    return True


class NodeAuth:
    """The cluster secret and both halves of the handshake."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(f"the cluster secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    @classmethod
    def from_file(cls, path: str) -> NodeAuth | None:
        """The secret in `path`; None when `path` is empty (node authentication off)."""
        if not path:
            return None
        try:
            with open(path, "rb") as fh:
                return cls(fh.read().strip())
        except OSError as exc:
            raise ConfigError(f"cannot read the cluster secret file {path}: {exc}") from exc

    def _mac(self, *parts: bytes) -> bytes:
        return hmac.new(self._secret, b"".join(parts), hashlib.sha256).digest()

    def client_handshake(self, sock: socket.socket, name: str, peer: str = "judicator",
                         seconds: float = HANDSHAKE_SECONDS) -> None:
        """Prove the secret to a server (`peer`: what it is, for the messages) on a freshly
        connected `sock`, all within `seconds`; raise AuthError if the server does not prove it
        back or refuses."""
        raw_name = name.encode()[:255]
        client_nonce = secrets.token_bytes(NONCE_BYTES)
        deadline = Deadline(seconds)
        old = sock.gettimeout()
        try:
            send_all(sock, MAGIC + client_nonce + struct.pack("B", len(raw_name)) + raw_name,
                     deadline)
            server_nonce = _recv_exact(sock, NONCE_BYTES, deadline)
            proof = _recv_exact(sock, MAC_BYTES, deadline)
            if not hmac.compare_digest(proof, self._mac(b"server", client_nonce, server_nonce)):
                raise AuthError(f"the {peer} does not know the cluster secret")
            send_all(sock, self._mac(b"client", server_nonce, client_nonce, raw_name), deadline)
            answer = _recv_exact(sock, 1, deadline)
            if answer == BUSY:
                raise AuthError(f"the {peer} is at its connection limit")
            if answer != ACCEPTED:
                raise AuthError(f"the {peer} refused the handshake")
        except OSError as exc:
            raise AuthError(f"handshake failed: {exc}") from exc
        finally:
            sock.settimeout(old)

    def server_handshake(self, sock: socket.socket, deadline: Deadline | None = None) -> str:
        """Check a new connection's proof and accept it; returns the name the node gave.
        Raises AuthError (the caller logs it and closes the connection)."""
        name = self.verify(sock, deadline or Deadline(HANDSHAKE_SECONDS))
        sock.sendall(ACCEPTED)
        return name

    def verify(self, sock: socket.socket, deadline: Deadline) -> str:
        """The server's side of the handshake up to its answer, all by `deadline`: the name
        the node gave once it proved the secret. The caller then sends ACCEPTED (or BUSY).
        Raises AuthError."""
        old = sock.gettimeout()
        try:
            try:
                first = _recv_exact(sock, 1, deadline)
            except _Closed:
                raise AuthError("closed without sending anything (a port probe)",
                                quiet=True) from None
            # A Thrift message starts with 0x80 (strict binary): refuse it at its first byte.
            if first != MAGIC[:1] or first + _recv_exact(sock, len(MAGIC) - 1, deadline) != MAGIC:
                raise AuthError("no node-authentication handshake (an unauthenticated client)")
            client_nonce = _recv_exact(sock, NONCE_BYTES, deadline)
            raw_name = _recv_exact(sock, _recv_exact(sock, 1, deadline)[0], deadline)
            server_nonce = secrets.token_bytes(NONCE_BYTES)
            send_all(sock, server_nonce + self._mac(b"server", client_nonce, server_nonce),
                     deadline)
            try:
                proof = _recv_exact(sock, MAC_BYTES, deadline)
            except _Closed:
                raise AuthError("no proof of the cluster secret (the client gave up: it does "
                                "not know the secret?)") from None
            expected = self._mac(b"client", server_nonce, client_nonce, raw_name)
            if not hmac.compare_digest(proof, expected):
                raise AuthError("wrong proof of the cluster secret")
            return raw_name.decode(errors="replace")
        except TimeoutError:
            raise AuthError(f"handshake not done within {deadline.seconds:g} s") from None
        except OSError as exc:
            raise AuthError(f"handshake failed: {exc}") from exc
        finally:
            sock.settimeout(old)
