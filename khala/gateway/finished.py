"""Finished tasks kept in a gateway worker's memory for a short while, so that reading one
again (a client polling `GET /api/task?id=` of a task that is done, a page refreshing) does not
cost a judicator round trip each time.

What may be kept: a task whose stored state no executor's or client's transition can change
any more (`khala.rules.lifecycle.is_final`: done, and not a cancelled run whose output may still
be handed in). What such a task shows through the seed API never changes, except that it can be
deleted (API v2 `DELETE`, a job's pruning, on any gateway or judicator) or rejudged by an
operator. So each entry lives `seconds` from the moment it was read from the judicator: a task
deleted or rejudged elsewhere is served as it was for at most that long afterwards; a DELETE
answered by this worker empties it at once (khala/gateway/app.py), and a read that was fetching
meanwhile does not keep what it got. API v2 reads are not served from here: their answer
carries the task's webhook delivery record, which changes after the task ends.

Bounded in bytes (the tasks' files and outputs, at least 1 KiB each); least recently used
first out. Only a 24-hex task id is looked up (a client-chosen key can name another task once
its task is deleted). Entries are shared read-only between request threads: nothing may change
a Task read from here. Visibility checks (API keys) run on every request as before; they read
the task's user, which never changes, through the same cache.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from khala.model import Task, valid_id
from khala.rules.lifecycle import is_final


def task_bytes(task: Task) -> int:
    """About the memory a task holds: its files, texts and outputs (the rest is small)."""
    c, e, r = task.compile, task.execute, task.result
    size = 1024 + len(c.source) + len(c.command) + len(e.data) + len(e.input)
    size += len(e.command) + len(e.standard)
    size += sum(256 + len(case.input) + len(case.standard) for case in e.cases)
    if r is not None:
        size += len(r.compile_output) + len(r.compile_error)
        size += len(r.execute_output) + len(r.execute_error)
        if r.judgement is not None:
            size += sum(256 + len(x.output) + len(x.error) + len(x.message)
                        for x in r.judgement.cases)
    return size


@dataclass
class _Entry:
    task: Task
    expires: float
    size: int
    answers: dict[str, bytes] = field(default_factory=dict)  # rendered bodies by variant


class FinishedTasks:
    """A small LRU of final tasks by id, each kept `seconds` after it was fetched, `budget`
    bytes in all (task_bytes). `seconds` or `budget` 0 turns it off (every read fetches).
    `clock` is for tests (monotonic seconds)."""

    def __init__(self, seconds: float, budget: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.budget = max(0, budget)
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._forgotten = 0  # forget_all calls so far: a fetch begun before one is not kept

    @property
    def enabled(self) -> bool:
        return self.seconds > 0 and self.budget > 0

    def read(self, ref: str, fetch: Callable[[str], Task]) -> Task:
        """The task `ref` names: from memory when kept and fresh, else `fetch(ref)` (whose
        errors pass through), kept afterwards if it is final and `ref` is its id."""
        if not self.enabled or not valid_id(ref):
            return fetch(ref)
        kept = self.lookup(ref)
        if kept is not None:
            return kept
        with self._lock:
            started, generation = self._clock(), self._forgotten  # both before the fetch
        task = fetch(ref)
        if task.id == ref and is_final(task):
            self._keep(task, started + self.seconds, generation)
        return task

    def lookup(self, task_id: str) -> Task | None:
        with self._lock:
            entry = self._kept.get(task_id)
            if entry is None:
                return None
            if entry.expires <= self._clock():
                self._drop(task_id)
                return None
            self._kept.move_to_end(task_id)
            return entry.task

    def answer(self, task: Task, variant: str, render: Callable[[], bytes]) -> bytes:
        """`render()` of a task read from here, made once per variant while the task is kept
        (a final task renders the same every time); a task not kept is rendered each time."""
        with self._lock:
            entry = self._kept.get(task.id)
            if entry is None or entry.task is not task:
                entry = None
            elif variant in entry.answers:
                return entry.answers[variant]
        body = render()
        if entry is not None:
            with self._lock:
                if self._kept.get(task.id) is entry and variant not in entry.answers:
                    entry.answers[variant] = body
                    entry.size += len(body)
                    self._bytes += len(body)
                    self._shrink()
        return body

    def forget_all(self) -> None:
        """Something was deleted through this worker: never serve it again."""
        with self._lock:
            self._kept.clear()
            self._bytes = 0
            self._forgotten += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    def _keep(self, task: Task, expires: float, generation: int) -> None:
        size = task_bytes(task)
        if size > self.budget // 4:
            return  # a huge task would push out many small ones: fetched every time
        with self._lock:
            if generation != self._forgotten:
                return  # a delete was answered while it was fetched: it may be that task
            self._drop(task.id)
            self._kept[task.id] = _Entry(task, expires, size)
            self._bytes += size
            self._shrink()

    def _shrink(self) -> None:
        while self._bytes > self.budget:
            self._drop(next(iter(self._kept)))

    def _drop(self, task_id: str) -> None:
        entry = self._kept.pop(task_id, None)
        if entry is not None:
            self._bytes -= entry.size
