"""The framing of a stream connection between a gateway and an executor's stream endpoint.

A frame is `<4-byte big-endian header length><4-byte data length><JSON header><data>`. The
header is a JSON object with a "type"; data is raw bytes (output or input). Frames larger than
MAX_HEADER / MAX_DATA are refused (the connection is closed).

With a cluster secret, a connection begins with the node-authentication handshake
(khala/rpc/auth.py) and the frames follow it; the endpoint gives the handshake and the first
frame one deadline together (khala/streams/hub.py).

gateway → executor: {"type": "follow", "task": ID, "position": [4 offsets], "input": bool,
    "sender": STR, "once": bool} first; then, once the executor answered {"type": "input"}:
    {"type": "input", "offset": N}+bytes (the sender's input from its byte N on) and
    {"type": "close", "offset": N} (the input ends after the sender's first N bytes).
executor → gateway: with "input": true for an interactive task, first
    {"type": "input", "accepted": N}: this connection now holds the task's input (a newer one
    supersedes it) and N bytes of this sender's input are queued, so it sends from N; later
    {"type": "ack", "accepted": N} as input is queued, and {"type": "superseded"} when a newer
    connection took the input over (this one's input is no longer read), {"type": "closed"}
    once the input is closed; {"type": "no_input"} first instead when the task is not
    interactive. Then
    {"type": "chunk", "stream": S, "offset": N}+bytes,
    {"type": "dropped", "stream": S, "start": N, "end": M}, {"type": "status", "status": N},
    {"type": "end", "status": N} last (with "once": {"type": "now", "status": N} after what
    the log holds now, unless the task ended), or {"type": "unknown"} (no such task here) /
    {"type": "busy"} (too many connections) alone.
Input bytes the executor already queued are skipped when sent again, input past them is
refused (the connection ends), so a sender that reconnects loses and repeats nothing.
"""

from __future__ import annotations

import json
import select
import socket
import struct
from typing import Any

from khala.net.deadline import Deadline, recv_exact

#: Kernel buffer of each stream connection's sending (executor) and receiving (gateway) side,
#: and of a pow-1 websocket's sending side: what a stalled client can hold in flight is bounded
#: by these, not by the kernel's autotuning (several MiB per socket on loopback).
SOCKET_BUFFER = 256 * 1024
MAX_HEADER = 4096
MAX_DATA = 1024 * 1024
_HEAD = struct.Struct(">II")


class FrameError(Exception):
    """The peer sent something that is not a frame, or closed the connection."""


def encode(header: dict[str, Any], data: bytes = b"") -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    return _HEAD.pack(len(text), len(data)) + text + data


def _read_exact(sock: socket.socket, size: int, deadline: Deadline | None) -> bytes:
    if deadline is not None:
        try:
            return recv_exact(sock, size, deadline)
        except EOFError:
            raise FrameError("connection closed") from None
    parts: list[bytes] = []
    left = size
    while left:
        part = sock.recv(min(left, 65536))
        if not part:
            raise FrameError("connection closed")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def wait_readable(sock: socket.socket, seconds: float) -> bool:
    """Whether `sock` has something to read (a frame, or its end) within `seconds`: a reader
    that may wait long between frames waits here, not in `read_frame` (whose reads time out
    with the socket's timeout, meant for a frame under way). OSError once `sock` is closed."""
    try:
        readable, _, _ = select.select([sock], [], [], seconds)
    except ValueError as exc:  # closed (fileno -1), also between a check and the select
        raise OSError("stream connection closed") from exc
    return bool(readable)


def read_frame(sock: socket.socket, deadline: Deadline | None = None
               ) -> tuple[dict[str, Any], bytes]:
    """The next frame (all of it by `deadline` when given, else each read within the socket's
    timeout); FrameError at the end of the connection or on a malformed frame, TimeoutError
    when the time is up."""
    head_len, data_len = _HEAD.unpack(_read_exact(sock, _HEAD.size, deadline))
    if head_len > MAX_HEADER or data_len > MAX_DATA:
        raise FrameError("frame too large")
    try:
        header = json.loads(_read_exact(sock, head_len, deadline))
    except ValueError as exc:
        raise FrameError("frame header is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise FrameError("frame header has no type")
    return header, _read_exact(sock, data_len, deadline) if data_len else b""
