"""Reading one Thrift call off a socket within limits, before anything decodes it.

thriftpy2 0.7.1 has no string or container length limits (only a nesting depth): a list header
claiming a million empty structs costs ~145 bytes of RAM per byte sent, and a string header
makes the transport grow its buffer to whatever length it claims. So the judicator reads each
call here first: `MessageReader.read_message` walks the binary protocol (strict, version 1) over
the incoming bytes without building any value, refusing (`MessageRefused`) a message longer
than `max_bytes`, any string or binary longer than the whole message may be, any container with
a negative size, more than `max_items` container items plus structs in one message, or nesting
deeper than `max_depth`. Only a message that passes is handed, as bytes, to the real protocol.

Pure parsing over a `recv`-like callable; no threads, no globals.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

# Thrift binary type codes.
STOP, BOOL, BYTE, DOUBLE, I16, I32, I64, STRING, STRUCT, MAP, SET, LIST = (
    0, 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15,
)
FIXED = {BOOL: 1, BYTE: 1, DOUBLE: 8, I16: 2, I32: 4, I64: 8}
VERSION_MASK, VERSION_1 = 0xFFFF0000, 0x80010000
RECV_CHUNK, RECV_MAX = 65536, 1 << 20  # bytes asked of one recv


class MessageRefused(Exception):  # noqa: N818 - a refusal, not a bug
    """The incoming message breaks a limit or is not strict binary protocol."""


class ConnectionEnded(Exception):  # noqa: N818
    """The peer closed the connection (cleanly, between messages, or mid-message)."""


@dataclass(frozen=True)
class MessageLimits:
    max_bytes: int  # one whole message
    max_items: int  # container items plus structs, summed over one message
    max_depth: int = 64  # nesting of structs and containers


class MessageReader:
    """Reads whole messages from `recv(n) -> bytes` (b"" = closed), one at a time."""

    def __init__(self, recv: Callable[[int], bytes], limits: MessageLimits) -> None:
        self._recv = recv
        self._limits = limits
        self._buf = bytearray()
        self._pos = 0
        self._items = 0

    def read_message(self) -> bytes:
        """The next message's bytes. Raises ConnectionEnded or MessageRefused (after which
        the connection must be closed: the stream position is lost)."""
        del self._buf[: self._pos]
        self._pos = 0
        self._items = 0
        size = self._i32()
        if size >= 0 or (size & VERSION_MASK) != VERSION_1 & VERSION_MASK:
            raise MessageRefused("not a strict binary protocol message (version 1)")
        self._skip(self._length())  # method name
        self._skip(4)  # sequence id
        self._struct(1)
        return bytes(self._buf[: self._pos])

    # ------------------------------------------------------------------ walking

    def _value(self, ttype: int, depth: int) -> None:
        if ttype in FIXED:
            self._skip(FIXED[ttype])
        elif ttype == STRING:
            self._skip(self._length())
        elif ttype == STRUCT:
            self._struct(depth + 1)
        elif ttype == MAP:
            key, value = self._byte(), self._byte()
            for _ in range(self._count(depth)):
                self._value(key, depth + 1)
                self._value(value, depth + 1)
        elif ttype in (SET, LIST):
            element = self._byte()
            count = self._count(depth)
            if element in FIXED:
                self._skip(count * FIXED[element])
            else:
                for _ in range(count):
                    self._value(element, depth + 1)
        else:
            raise MessageRefused(f"unknown Thrift type {ttype}")

    def _struct(self, depth: int) -> None:
        self._check_depth(depth)
        self._add_items(1)
        for _ in range(self._limits.max_bytes):  # each field takes at least 3 bytes
            ftype = self._byte()
            if ftype == STOP:
                return
            self._skip(2)  # field id
            self._value(ftype, depth)
        raise MessageRefused("struct longer than the message limit")

    def _count(self, depth: int) -> int:
        self._check_depth(depth + 1)
        count = self._i32()
        if count < 0:
            raise MessageRefused(f"negative container size {count}")
        self._add_items(count)
        return count

    def _length(self) -> int:
        length = self._i32()
        if length < 0 or length > self._limits.max_bytes:
            raise MessageRefused(f"string of {length} bytes")
        return length

    def _add_items(self, count: int) -> None:
        self._items += count
        if self._items > self._limits.max_items:
            raise MessageRefused(f"more than {self._limits.max_items} items in one message")

    def _check_depth(self, depth: int) -> None:
        if depth > self._limits.max_depth:
            raise MessageRefused(f"nested deeper than {self._limits.max_depth}")

    # ------------------------------------------------------------------ bytes

    def _need(self, n: int) -> None:
        if self._pos + n > self._limits.max_bytes:
            raise MessageRefused(f"message longer than {self._limits.max_bytes} bytes")
        while len(self._buf) - self._pos < n:
            missing = n - (len(self._buf) - self._pos)
            chunk = self._recv(max(RECV_CHUNK, min(missing, RECV_MAX)))
            if not chunk:
                raise ConnectionEnded("peer closed the connection")
            self._buf += chunk

    def _skip(self, n: int) -> None:
        self._need(n)
        self._pos += n

    def _byte(self) -> int:
        self._need(1)
        self._pos += 1
        return self._buf[self._pos - 1]

    def _i32(self) -> int:
        self._need(4)
        (value,) = struct.unpack_from("!i", self._buf, self._pos)
        self._pos += 4
        return int(value)
