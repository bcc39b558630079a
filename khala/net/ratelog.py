"""Log lines that a stranger can cause (a refused connection, a dropped handshake), at a bounded
rate: one line per kind of event per `interval`, the next one saying how many like it were left
out meanwhile. A flood of bad connections then costs a few lines, not one per connection, and
the log still says what happened and how often."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: Seconds between two lines of one kind.
INTERVAL = 10.0
#: Kinds remembered at once (a kind is the event's text without its peer: a small set).
MAX_KINDS = 256


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[str, tuple[float, int]] = {}  # kind → (last line at, left out since)

    def log(self, level: int, kind: str, message: str, *args: object) -> bool:
        """Log `message % args` unless a line of `kind` went out less than `interval` ago;
        True if it was logged."""
        if not self._log.isEnabledFor(level):
            return False
        now = self._clock()
        with self._lock:
            last, skipped = self._kinds.get(kind, (-self._interval, 0))
            if now - last < self._interval:
                self._kinds[kind] = (last, skipped + 1)
                return False
            if len(self._kinds) >= MAX_KINDS:
                self._kinds.clear()
            self._kinds[kind] = (now, 0)
        if skipped:
            message += " (and %d more like it in the last %.0f s)"
            args = (*args, skipped, now - last)
        self._log.log(level, message, *args)
        return True
