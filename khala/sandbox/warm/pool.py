"""Warm sandboxes: bubblewrap sandboxes built once and reused, clean, for many steps.

A cold step (`bwrap.py`) builds a whole bubblewrap sandbox — namespaces, about twenty mounts, a
seccomp filter — and throws it away: most of its cost. A warm box (`box.py`) is that same
sandbox built once, with a small init (`box_init.py`, pid 1 of its pid namespace) that forks
each step on request, the way go-judge keeps pre-created containers; it keeps per step what a
cold step has fresh (its docstring says how: cgroup, files, processes, environment, IPC).

This module is the pool: `WarmSandbox` keeps `size` boxes, hands each step a ready one and
gives it back after the step (`WarmProcess.release`). Resetting and preparing a box (removing
the last run cgroup, unmounting, checking, forking and moving the stem) happens on background
workers (one per box, at most one per CPU), off the steps' path. Anything unexpected (no
answer in time, a dirty reset, a dead init) retires the box; the pool builds a replacement in
the background, and a step that finds no ready box within `WAIT_SECONDS` runs cold.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import resource
import stat
import tempfile
import threading

from khala.errors import SandboxUnavailable
from khala.sandbox.base import RunSpec
from khala.sandbox.bwrap import (
    INSIDE_WORKDIR,
    BwrapProcess,
    BwrapSandbox,
    inside_cwd,
    sandbox_env,
)
from khala.sandbox.cgroups import RunCgroup
from khala.sandbox.core import Process, rlimits
from khala.sandbox.fstree import remove_tree
from khala.sandbox.warm.box import (
    ANSWER_SECONDS,
    STAGES,
    START_SECONDS,
    WARM_PREFIX,
    Stem,
    WarmBox,
    WarmError,
    find_python,
    remove_stale,
)
from khala.sandbox.warm.shell import step_script

log = logging.getLogger(__name__)

WAIT_SECONDS = 0.5  # a step waits this long for a box being prepared, then runs cold


class WarmProcess(BwrapProcess):
    """A step run by a warm box's stem: the status comes from the init, the usage and the kill
    from the step's own run cgroup, as for a cold step."""

    def __init__(self, stem: Stem, feed: int | None, box: WarmBox, pool: WarmSandbox) -> None:
        super().__init__(stem.pid, stem.cgroup)
        self.pidfd, self.box, self.pool = stem.pidfd, box, pool
        self.io: tuple[int, int, int | None] | None = (*stem.take_outputs(), feed)
        self.gone: bool | None = None  # the waiting kill's finding: no process left

    def own_io(self) -> tuple[int, int, int | None] | None:
        """The stem's pipes (made ahead): stdout and stderr to read, stdin to feed."""
        io, self.io = self.io, None
        return io

    def open_pidfd(self) -> int:
        return self.pidfd  # opened before the step could run (and exit); the core closes it

    def reap(self) -> tuple[int, resource.struct_rusage | None]:
        try:
            return self.box.status()
        except WarmError as exc:
            raise OSError(str(exc)) from exc

    def step_pid(self) -> int:
        return self.pid  # the stem became the command: no launcher in between

    def signal(self, signum: int) -> None:
        """Every process of the run cgroup, the top one included (no bwrap in between; the
        box's init is not in it)."""
        for pid in self.cgroup.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self, wait: bool) -> None:
        if wait:
            self.gone = self.cgroup.kill_all()
        else:
            self.cgroup.kill_all(timeout=0.0)

    def release(self) -> bool:
        """Whether every process of the step is gone (the core's kill found none left, or a
        kill now); the empty run cgroup is removed on the pool's thread, off the step's path."""
        clean = self.gone if self.gone is not None else self.cgroup.kill_all()
        self.pool.give_back(self.box, clean, self.cgroup)
        return clean


class WarmSandbox(BwrapSandbox):
    """The bwrap sandbox with a pool of `size` warm boxes (two per slot let one be prepared
    while the other runs); a step that finds none ready in time, or whose box fails before the
    step started, runs cold."""

    name = "bwrap"

    def __init__(self, size: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.size = size
        self.python = find_python()
        remove_stale(tempfile.gettempdir())
        self.base = tempfile.mkdtemp(prefix=f"{WARM_PREFIX}{os.getpid()}-")
        os.chmod(self.base, 0o711)
        self._ready: list[WarmBox] = []
        self._changed = threading.Condition()
        # (a box to reset and prepare, or None: build one; a step's run cgroup to remove first)
        self._todo: queue.Queue[tuple[WarmBox | None, RunCgroup | None] | None] = queue.Queue()
        self._count = 0  # boxes alive: ready, running, being reset/prepared, being built
        self._closed = False
        # Several workers: preparing a box mostly waits (cgroup v1 moves wait for an RCU grace
        # period), so back-to-back steps of several slots are prepared side by side.
        self._workers = [threading.Thread(target=self._work, name=f"khala-warm-{n}", daemon=True)
                         for n in range(max(1, min(size, os.cpu_count() or 1)))]
        for worker in self._workers:
            worker.start()
        for _ in range(size):
            self._todo.put((None, None))
        self._count = size
        with self._changed:  # the first box: open_sandbox checks the sandbox with it
            self._changed.wait_for(lambda: self._ready or self._count == 0 or self._closed,
                                   timeout=START_SECONDS + ANSWER_SECONDS)

    @property
    def etc_dir(self) -> str:
        return self._etc

    def _work(self) -> None:
        """A background worker: remove steps' run cgroups, build, reset and prepare boxes."""
        while True:
            item = self._todo.get()
            if item is None:  # close()
                return
            box, cgroup = item
            survived = cgroup is not None and not cgroup.remove()
            if self._closed:
                if box is not None:
                    box.close()
                continue
            building = box is None
            try:
                if survived:
                    raise WarmError("a process of its step survived in the run cgroup")
                if box is None:
                    box = WarmBox(self, self.base, self.python)
                else:
                    box.reset()
                box.prepare()
            except (WarmError, SandboxUnavailable, OSError) as exc:
                log.warning("a warm sandbox is retired (steps run cold meanwhile): %s", exc)
                if box is not None:
                    box.close()
                if building:  # no endless rebuilding when boxes cannot be built here
                    with self._changed:
                        self._count -= 1
                        self._changed.notify_all()
                else:
                    self._todo.put((None, None))  # a replacement
                continue
            with self._changed:
                self._ready.append(box)
                self._changed.notify_all()

    def give_back(self, box: WarmBox, clean: bool, cgroup: RunCgroup) -> None:
        """After a step: remove its run cgroup, reset and prepare the box in the background,
        or retire the box (`clean` False: some process of the step survived the kill)."""
        if clean:
            self._todo.put((box, cgroup))
            return
        log.warning("a warm sandbox is retired: processes of its step survived")
        box.close()
        self._todo.put((None, cgroup))  # a replacement, once the cgroup is gone

    def _take(self) -> WarmBox | None:
        with self._changed:
            self._changed.wait_for(lambda: self._ready or self._count == 0 or self._closed,
                                   timeout=WAIT_SECONDS)
            return self._ready.pop() if self._ready and not self._closed else None

    def start(self, spec: RunSpec, stdin: int, stdout: int, stderr: int) -> Process:
        if spec.identity is not None:  # boxes run as the sandbox's own user: cold
            return super().start(spec, stdin, stdout, stderr)
        if spec.root is not None:  # boxes are built on the host's root: an image's step is cold
            return super().start(spec, stdin, stdout, stderr)
        if spec.hostname:  # a box's UTS namespace is made once, named "khala": cold
            return super().start(spec, stdin, stdout, stderr)
        # A step with the network runs cold: a box's namespace is built once, without one.
        script = self._script(spec, stdin) if not spec.network else None
        box = self._take() if script is not None else None
        if box is None or script is None:
            return super().start(spec, stdin, stdout, stderr)
        try:
            stem, feed = box.begin(spec, script,
                                   spec.stdin_feed is not None or spec.connect is not None)
        except WarmError as exc:
            log.warning("a warm sandbox failed before its step started (it runs cold): %s", exc)
            self._todo.put((box, None))  # reset finds what is wrong, or prepares it again
            return super().start(spec, stdin, stdout, stderr)
        return WarmProcess(stem, feed, box, self)

    @staticmethod
    def _script(spec: RunSpec, stdin: int) -> str | None:
        """The step's script for a stem's shell; None: it runs cold. `stdin` is the core's:
        a regular file (the stem's shell opens the same file, the core checked it), the
        live-input pipe or an interaction's (the stem's own pipes take their place) or
        /dev/null. A step given its stdin and stdout (`stdio`) runs cold: the stem's pipes
        were made ahead."""
        if spec.stdio is not None:
            return None
        mode = os.fstat(stdin).st_mode
        inside: str | None = ""
        if stat.S_ISFIFO(mode):
            if spec.stdin_feed is None and spec.connect is None:
                return None
            inside = None
        elif stat.S_ISREG(mode):
            rel = os.path.relpath(spec.stdin_path or "", spec.workdir)
            if rel.startswith(".."):
                return None
            inside = os.path.join(INSIDE_WORKDIR, rel)
        return step_script(spec.argv, sandbox_env(spec), rlimits(spec.limits), inside,
                           inside_cwd(spec))

    def settle(self, timeout: float) -> bool:
        """Wait until no box is being built, reset or prepared (for checks); False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: len(self._ready) == self._count and self._todo.empty(), timeout=timeout)

    def owned(self) -> tuple[set[int], set[str], set[str]]:
        """What the pool itself holds now: its bwrap pids, mount points and cgroup dirs."""
        pids: set[int] = set()
        mounts: set[str] = set()
        cgroups: set[str] = set()
        with self._changed:
            boxes = list(self._ready)
        for box in boxes:
            if box.proc is not None:
                pids.add(box.proc.pid)
            mounts.update(os.path.join(box.stage, n) for n in STAGES)
            for cgroup in (box.cgroup, box.stem.cgroup if box.stem else None):
                if cgroup is not None:
                    cgroups.update(cgroup.dirs)
        return pids, mounts, cgroups

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for _ in self._workers:
            self._todo.put(None)
        for worker in self._workers:
            worker.join(START_SECONDS + 10 * ANSWER_SECONDS)
        with self._changed:
            boxes, self._ready = self._ready, []
        while not self._todo.empty():  # given back after the workers left
            item = self._todo.get_nowait()
            if item is not None:
                if item[1] is not None:
                    item[1].remove()
                if item[0] is not None:
                    boxes.append(item[0])
        for box in boxes:
            box.close()
        remove_tree(self.base)
        super().close()
