"""Bounded capture of a step's output streams, shared by every sandbox backend.

The step's waiting loop reads both pipes itself (`khala.sandbox.core.wait_step` selects on the
top process's pidfd and the two pipes): no thread per stream, so a step costs no thread starts.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

CHUNK = 65536


class Streams:
    """The step's stdout and stderr pipes (read ends): each kept up to `limit` bytes; more is
    read and discarded (the writer is never blocked before it is killed) and sets `overflow`."""

    def __init__(self, out_r: int | None, err_r: int, limit: int, overflow: threading.Event,
                 tap: Callable[[str, bytes], None] | None = None) -> None:
        """`out_r` None: stdout is not captured (it goes elsewhere: an interaction's pipe)."""
        self._tap = tap  # live output: ("stdout"|"stderr", bytes) for every kept chunk
        self._out, self._err = out_r, err_r
        self._names = {err_r: "stderr"}
        self._limit = limit
        self._overflow = overflow
        self._fds = [err_r] if out_r is None else [out_r, err_r]
        if out_r is not None:
            self._names[out_r] = "stdout"
        self._open = list(self._fds)
        self._chunks: dict[int, list[bytes]] = {fd: [] for fd in self._fds}
        self._sizes = {fd: 0 for fd in self._fds}
        for fd in self._fds:
            os.set_blocking(fd, False)

    def fds(self) -> list[int]:
        """The pipes not at their end yet."""
        return list(self._open)

    def read(self, fd: int) -> None:
        """Read what `fd` holds now (one chunk); at its end, close it."""
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            self._open.remove(fd)
            os.close(fd)
            return
        room = self._limit - self._sizes[fd]
        if len(chunk) > room:
            if room > 0:
                self._keep(fd, chunk[:room])
            self._overflow.set()
            return
        self._keep(fd, chunk)

    def _keep(self, fd: int, chunk: bytes) -> None:
        self._chunks[fd].append(chunk)
        self._sizes[fd] += len(chunk)
        if self._tap is not None:
            self._tap(self._names[fd], chunk)

    def drain(self, timeout: float = 5.0) -> None:
        """Read both pipes to their end, waiting at most `timeout`; then close them."""
        deadline = time.monotonic() + timeout
        while self._open:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd in select.select(self._open, [], [], left)[0]:
                self.read(fd)
        self.close()

    def close(self) -> None:
        for fd in self._open:
            os.close(fd)
        self._open = []

    def result(self) -> tuple[bytes, bytes]:
        out = b"" if self._out is None else b"".join(self._chunks[self._out])
        return out, b"".join(self._chunks[self._err])
