"""A pass that only the leader runs, every `interval` seconds, on its own thread (the reaper,
the job scheduler). A failing pass is logged and retried at the next interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class LeaderLoop:
    def __init__(
        self, name: str, interval: float, is_leader: Callable[[], bool], work: Callable[[], None]
    ) -> None:
        self.name = name
        self.interval = interval
        self.is_leader = is_leader
        self._work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"khala-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def stopping(self) -> bool:
        return self._stop.is_set()

    def _loop(self) -> None:
        leading = False
        while not self._stop.wait(self.interval):
            now_leading = self.is_leader()
            if now_leading != leading:  # after the last pass as the leader, or before the first
                log.info("%s: %s", self.name,
                         "acting as the leader" if now_leading else "no longer the leader")
                leading = now_leading
            if not now_leading:
                continue
            try:
                self._work()
            except Exception:
                log.exception("%s pass failed; retrying next interval", self.name)
