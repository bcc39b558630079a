"""Bounded capture of a child's output streams, shared by every sandbox backend."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class Capture:
    """Reads one pipe in a thread, keeping at most `limit` bytes; notes when more came."""

    def __init__(self, fd: int, limit: int, on_overflow: threading.Event,
                 tap: Callable[[bytes], None] | None = None) -> None:
        self._fd = fd
        self._tap = tap  # sees every kept chunk as it is read (live output)
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.overflowed = False
        self._on_overflow = on_overflow
        self._thread = threading.Thread(target=self._pump, daemon=True, name="khala-capture")
        self._thread.start()

    def _pump(self) -> None:
        try:
            while True:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    return
                room = self._limit - self._size
                if len(chunk) > room:
                    if room > 0:
                        self._keep(chunk[:room])
                    if not self.overflowed:
                        self.overflowed = True
                        self._on_overflow.set()
                    continue  # keep draining so the writer is not blocked before it is killed
                self._keep(chunk)
        finally:
            os.close(self._fd)

    def _keep(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._tap is not None:
            self._tap(chunk)

    def result(self, timeout: float = 5.0) -> bytes:
        """The captured bytes; waits a bounded time for the pipe to close."""
        self._thread.join(timeout)
        return b"".join(self._chunks)
