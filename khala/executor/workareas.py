"""Work areas made ahead: an executor's plain tasks take a work dir that was already made and
mounted (a fresh, empty tmpfs of the default size) and give it back when they end; a thread of
its own removes used ones and makes the next ones, off the slot's path.

A work dir is never reused: each task gets one that no step has seen, so nothing of a run can
reach the next one. A task that asks another size, or finds none ready, makes its own on the
spot as before. Work dirs keep the `khala-run-<executor pid>-` names, so the mounts of an
executor that died are found and removed by the next one (khala/sandbox/workarea.py).
"""

from __future__ import annotations

import logging
import queue
import threading

from khala.config import ExecutorSettings
from khala.executor.workdirs import make_workdir, remove_workdir
from khala.sandbox.base import Sandbox

log = logging.getLogger(__name__)

CLOSE_SECONDS = 10.0  # bound of close(): the thread's last removal


class WorkAreas:
    def __init__(self, sandbox: Sandbox, settings: ExecutorSettings, ahead: int) -> None:
        self._sandbox = sandbox
        self._settings = settings
        self._ahead = max(0, ahead)  # empty work areas kept ready (one per slot)
        self._size = settings.disk_limit  # the size they are mounted with
        self._lock = threading.Lock()
        self._ready: list[str] = []
        self._closed = False
        self._broken = False  # making one ahead failed: make each on the spot
        # a used work dir to remove, "" = make one ahead, None = stop
        self._todo: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="khala-workareas", daemon=True)
        self._thread.start()
        for _ in range(self._ahead):
            self._todo.put("")

    def take(self, task_id: str, size: int | None) -> str:
        """An empty work dir bounded to `size` bytes (mounted), ready for the task's files."""
        with self._lock:
            workdir = self._ready.pop() if self._ready and size == self._size else ""
        if workdir:
            return workdir
        workdir = make_workdir(task_id, self._settings)
        try:
            self._sandbox.open_workdir(workdir, size)
        except BaseException:
            remove_workdir(workdir, self._sandbox)
            raise
        return workdir

    def give_back(self, workdir: str) -> None:
        """The task ended: its work dir is unmounted and removed in the background (at once
        once closed), then the next one is made (after the task, not beside its steps)."""
        with self._lock:  # queued under the lock: close() drains what came before it
            if not self._closed:
                self._todo.put(workdir)
                self._todo.put("")
                return
        remove_workdir(workdir, self._sandbox)

    def ready(self) -> int:
        with self._lock:
            return len(self._ready)

    def close(self) -> None:
        """Stop making work areas; remove the ready ones and those given back."""
        with self._lock:
            self._closed = True
        self._todo.put(None)
        self._thread.join(CLOSE_SECONDS)
        with self._lock:
            left, self._ready = self._ready, []
        while not self._todo.empty():
            item = self._todo.get_nowait()
            if item:
                left.append(item)
        for workdir in left:
            remove_workdir(workdir, self._sandbox)

    def _work(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                return
            if item:
                remove_workdir(item, self._sandbox)  # never raises
                continue
            with self._lock:
                wanted = not self._closed and not self._broken and len(self._ready) < self._ahead
            if wanted:
                self._make_one()

    def _make_one(self) -> None:
        workdir = ""
        try:
            workdir = make_workdir("ahead", self._settings)
            self._sandbox.open_workdir(workdir, self._size)
        except Exception:  # noqa: BLE001 - logged; tasks then make their own
            log.exception("cannot make a work area ahead; each task makes its own")
            if workdir:
                remove_workdir(workdir, self._sandbox)
            with self._lock:
                self._broken = True
            return
        with self._lock:
            if not self._closed:
                self._ready.append(workdir)
                return
        remove_workdir(workdir, self._sandbox)
