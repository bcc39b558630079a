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

    def __init__(self, out_r: int, err_r: int, limit: int, overflow: threading.Event,
                 tap: Callable[[str, bytes], None] | None = None) -> None:
        self._tap = tap  # live output: ("stdout"|"stderr", bytes) for every kept chunk
        self._names = {out_r: "stdout", err_r: "stderr"}
        self._limit = limit
        self._overflow = overflow
        self._fds = [out_r, err_r]
        self._open = [out_r, err_r]
        self._chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
        self._sizes = {out_r: 0, err_r: 0}
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
        out, err = self._fds
        return b"".join(self._chunks[out]), b"".join(self._chunks[err])
