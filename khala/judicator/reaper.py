"""The leader's reaper: executors silent past the expiry lose their tasks to the queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from khala import model
from khala.store.base import Store

log = logging.getLogger(__name__)


def reap_once(store: Store, expiry: float) -> list[str]:
    """Requeue undone tasks whose holder has not reported within `expiry` seconds and forget
    silent executors. Returns the requeued task ids."""
    cutoff = model.time_before(expiry)
    now = model.now()
    requeued = [
        brief.id
        for brief in store.stale_tasks(cutoff)
        if brief.executor and store.requeue(brief.id, brief.executor, now)
    ]
    removed = store.remove_executors(cutoff)
    if requeued:
        log.warning("reaper: requeued %d task(s) of silent executors: %s", len(requeued), requeued)
    if removed:
        log.warning("reaper: removed silent executor(s) %s", removed)
    return requeued


class Reaper:
    """Runs reap_once every `interval` seconds while `is_leader()` says so."""

    def __init__(
        self,
        store: Store,
        expiry: float,
        interval: float,
        is_leader: Callable[[], bool],
        on_requeue: Callable[[], None],
    ) -> None:
        self._store = store
        self._expiry = expiry
        self._interval = interval
        self._is_leader = is_leader
        self._on_requeue = on_requeue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="khala-reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._is_leader():
                continue
            try:
                if reap_once(self._store, self._expiry):
                    self._on_requeue()
            except Exception:
                log.exception("reaper pass failed; retrying next interval")
