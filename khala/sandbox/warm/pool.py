"""Warm sandboxes: bubblewrap sandboxes built once and reused, clean, for many steps.

A cold step (`bwrap.py`) builds a whole bubblewrap sandbox — namespaces, about twenty mounts, a
seccomp filter — and throws it away: most of its cost. A warm box (`box.py`) is that same
sandbox built once, with a small init (`box_init.py`, pid 1 of its pid namespace) that starts
each step on request, the way go-judge keeps pre-created containers; it keeps per step what a
cold step has fresh (its docstring says how: cgroup, files, processes, environment, IPC).

This module is the pool: `WarmSandbox` keeps `size` boxes, hands each step a ready one and
gives it back after the step (`WarmProcess.release`). Resetting and preparing a box (removing
the last run cgroup, unmounting, checking, starting and moving the stem) happens on background
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
import time

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
    bind_runtime,
    remove_stale,
    unmount_under,
)
from khala.sandbox.warm.runtime import find_runtime, preloads
from khala.sandbox.warm.shell import step_script

log = logging.getLogger(__name__)

WAIT_SECONDS = 0.5  # a step waits this long for a box being prepared, then runs cold
DEFAULT_IMAGES = 4  # images with warm boxes at once (the executor's warm_images)
DEFAULT_IDLE = 120.0  # an image's pool unused this long is closed (warm_image_idle)
REPLACE_SECONDS = 5.0  # a full set of image pools gives up one only this long unused
IDLE_CHECK_SECONDS = 10.0  # how often idle image pools are looked for


class WarmProcess(BwrapProcess):
    """A step run by a warm box's stem: the status comes from the init, the usage and the kill
    from the step's own run cgroup, as for a cold step."""

    def __init__(self, stem: Stem, feed: int | None, box: WarmBox, sandbox: WarmSandbox,
                 pool: Pool) -> None:
        super().__init__(stem.pid, stem.cgroup)
        self.pidfd, self.box, self.sandbox, self.pool = stem.pidfd, box, sandbox, pool
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
        self.sandbox.give_back(self.pool, self.box, clean, self.cgroup)
        return clean


class Pool:
    """The boxes of one root: the host's (`root` None) or an unpacked image's. Guarded by the
    WarmSandbox's lock."""

    def __init__(self, root: str | None, size: int) -> None:
        self.root, self.size = root, size
        # which directory the boxes were built on: an image evicted and unpacked again is
        # another directory at the same path (khala/executor/images.py)
        self.identity = _identity(root)
        self.ready: list[WarmBox] = []
        self.count = 0  # boxes alive: ready, running, being reset/prepared, being built
        self.running = 0  # boxes a step holds
        self.used = time.monotonic()  # the last step that asked for one
        self.closed = False


def _identity(root: str | None) -> tuple[int, int] | None:
    if root is None:
        return None
    try:
        st = os.stat(root)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class WarmSandbox(BwrapSandbox):
    """The bwrap sandbox with a pool of `size` warm boxes on the host's root (two per slot let
    one be prepared while the other runs) and, for steps in images, pools of `size` boxes for
    up to `images` images at once (one is closed after `idle` seconds without a step); a step
    that finds no box ready in time, or whose box fails before the step started, runs cold."""

    name = "bwrap"

    def __init__(self, size: int, images: int = DEFAULT_IMAGES, idle: float = DEFAULT_IDLE,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.size, self.images, self.idle = size, images, idle
        self.runtime = find_runtime()
        remove_stale(tempfile.gettempdir())
        self.base = tempfile.mkdtemp(prefix=f"{WARM_PREFIX}{os.getpid()}-")
        os.chmod(self.base, 0o711)
        self.runtime_dir = os.path.join(self.base, "usr")
        os.mkdir(self.runtime_dir, 0o755)
        try:
            bind_runtime(self.runtime_dir)
        except WarmError as exc:
            unmount_under(self.base)
            remove_tree(self.base)
            raise SandboxUnavailable(f"cannot lend warm boxes the host's /usr: {exc}") from exc
        self._pools: dict[str | None, Pool] = {}
        self._closing: list[Pool] = []  # closed pools whose boxes are not all closed yet
        self._changed = threading.Condition()
        # (the pool, a box to reset and prepare or None: build one, a step's run cgroup to
        # remove first)
        self._todo: queue.Queue[tuple[Pool, WarmBox | None, RunCgroup | None] | None] = \
            queue.Queue()
        self._closed = False
        self._idle_due = 0.0  # when idle pools are looked for next
        # Several workers: preparing a box mostly waits (cgroup v1 moves wait for an RCU grace
        # period), so back-to-back steps of several slots are prepared side by side.
        self._workers = [threading.Thread(target=self._work, name=f"khala-warm-{n}", daemon=True)
                         for n in range(max(1, min(size, os.cpu_count() or 1)))]
        for worker in self._workers:
            worker.start()
        host = self._open_pool(None)
        with self._changed:  # the first box: open_sandbox checks the sandbox with it
            self._changed.wait_for(lambda: host.ready or host.count == 0 or self._closed,
                                   timeout=START_SECONDS + ANSWER_SECONDS)

    @property
    def etc_dir(self) -> str:
        return self._etc

    def _open_pool(self, root: str | None) -> Pool:
        """A new pool for `root`, its boxes queued to be built (the caller holds no lock). An
        image's pool builds one box first, the others once that one stood up: an image whose
        boxes cannot start costs one attempt, not `size`."""
        pool = Pool(root, self.size)
        first = pool.size if root is None else 1
        with self._changed:
            self._pools[root] = pool
            pool.count = first
        for _ in range(first):
            self._todo.put((pool, None, None))
        return pool

    def _grow(self, pool: Pool) -> None:
        """Queue the rest of a pool's boxes (its lock held), once its first one stood up."""
        missing = pool.size - pool.count
        if missing > 0 and not pool.closed:
            pool.count += missing
            for _ in range(missing):
                self._todo.put((pool, None, None))

    def _work(self) -> None:
        """A background worker: remove steps' run cgroups, build, reset and prepare boxes;
        close the boxes of closed pools and the pools of images left idle."""
        every = max(0.5, min(self.idle / 2, IDLE_CHECK_SECONDS))
        while True:
            try:
                item = self._todo.get(timeout=every)
            except queue.Empty:
                self._close_idle(every)
                continue
            if item is None:  # close()
                return
            self._handle(*item)
            self._close_idle(every)

    def _handle(self, pool: Pool, box: WarmBox | None, cgroup: RunCgroup | None) -> None:
        survived = cgroup is not None and not cgroup.remove()
        if self._closed or pool.closed:
            if box is not None:
                box.close()
            self._forget(pool)
            return
        building = box is None
        try:
            if survived:
                raise WarmError("a process of its step survived in the run cgroup")
            if box is None:
                box = WarmBox(self, self.base, pool.root)
            else:
                box.reset()
            box.prepare()
        except (WarmError, SandboxUnavailable, OSError) as exc:
            if box is not None:
                box.close()
            if self._closed:  # a box dies with the worker thread that started it (bwrap's
                self._forget(pool)  # --die-with-parent): expected while the pool closes
                return
            log.warning("a warm sandbox is retired (steps run cold meanwhile): %s", exc)
            if building:  # no endless rebuilding when boxes cannot be built here
                self._forget(pool)
            else:
                self._todo.put((pool, None, None))  # a replacement
            return
        with self._changed:
            if not pool.closed:
                pool.ready.append(box)
                if building:
                    self._grow(pool)
                self._changed.notify_all()
                return
        box.close()
        self._forget(pool)

    def _forget(self, pool: Pool) -> None:
        """One box of `pool` is gone."""
        with self._changed:
            pool.count -= 1
            if pool.closed and pool.count <= 0 and pool in self._closing:
                self._closing.remove(pool)
            self._changed.notify_all()

    def _close_pool(self, pool: Pool) -> None:
        """Close `pool` (its lock held): its ready boxes are closed by the workers, its running
        ones when they come back."""
        pool.closed = True
        if self._pools.get(pool.root) is pool:
            del self._pools[pool.root]
        if pool.count > 0:
            self._closing.append(pool)
        for box in pool.ready:
            self._todo.put((pool, box, None))
        pool.ready = []
        self._changed.notify_all()

    def _close_idle(self, every: float) -> None:
        """Close the pools of images unused for `idle` seconds (looked for at most once per
        `every` seconds, by whichever worker comes first)."""
        now = time.monotonic()
        with self._changed:
            if now < self._idle_due:
                return
            self._idle_due = now + every
            for pool in list(self._pools.values()):
                if pool.root is not None and not pool.running and now - pool.used > self.idle:
                    log.info("warm boxes of image %s closed: unused for %.0f s", pool.root,
                             now - pool.used)
                    self._close_pool(pool)

    def _pool_for(self, root: str | None) -> Pool | None:
        """The pool of `root`, opened when there is room (a place free, or the least recently
        used image's pool idle for REPLACE_SECONDS); None: the step runs cold."""
        now = time.monotonic()
        with self._changed:
            pool = self._pools.get(root)
            if pool is not None and root is not None and pool.identity != _identity(root):
                self._close_pool(pool)  # the image was unpacked again since
                pool = None
            if pool is not None:
                pool.used = now
                return pool
            if root is None or self.images <= 0 or self._closed or preloads(root):
                return None
            images = [p for p in self._pools.values() if p.root is not None]
            if len(images) >= self.images:
                oldest = min(images, key=lambda p: p.used)
                if oldest.running or now - oldest.used < REPLACE_SECONDS:
                    return None
                self._close_pool(oldest)
        return self._open_pool(root)

    def give_back(self, pool: Pool, box: WarmBox, clean: bool, cgroup: RunCgroup) -> None:
        """After a step: remove its run cgroup, reset and prepare the box in the background,
        or retire the box (`clean` False: some process of the step survived the kill)."""
        with self._changed:
            pool.running -= 1
        if clean:
            self._todo.put((pool, box, cgroup))
            return
        log.warning("a warm sandbox is retired: processes of its step survived")
        box.close()
        self._todo.put((pool, None, cgroup))  # a replacement, once the cgroup is gone

    def _take(self, pool: Pool) -> WarmBox | None:
        with self._changed:
            self._changed.wait_for(
                lambda: pool.ready or pool.count == 0 or pool.closed or self._closed,
                timeout=WAIT_SECONDS)
            if not pool.ready or pool.closed or self._closed:
                return None
            pool.running += 1
            return pool.ready.pop()

    def start(self, spec: RunSpec, stdin: int, stdout: int, stderr: int) -> Process:
        if spec.identity is not None:  # boxes run as the sandbox's own user: cold
            return super().start(spec, stdin, stdout, stderr)
        if spec.hostname:  # a box's UTS namespace is made once, named "khala": cold
            return super().start(spec, stdin, stdout, stderr)
        # A step with the network runs cold: a box's namespace is built once, without one.
        script = self._script(spec, stdin) if not spec.network else None
        pool = self._pool_for(spec.root) if script is not None else None
        box = self._take(pool) if pool is not None else None
        if box is None or script is None or pool is None:
            return super().start(spec, stdin, stdout, stderr)
        try:
            stem, feed = box.begin(spec, script, spec.stdin_feed is not None)
        except WarmError as exc:
            log.warning("a warm sandbox failed before its step started (it runs cold): %s", exc)
            with self._changed:
                pool.running -= 1
            self._todo.put((pool, box, None))  # reset finds what is wrong, or prepares it again
            return super().start(spec, stdin, stdout, stderr)
        return WarmProcess(stem, feed, box, self, pool)

    @staticmethod
    def _script(spec: RunSpec, stdin: int) -> str | None:
        """The step's script for a stem's shell; None: it runs cold. `stdin` is the core's:
        a regular file (the stem's shell opens the same file, the core checked it), the
        live-input pipe (the stem's own pipe takes its place) or /dev/null."""
        mode = os.fstat(stdin).st_mode
        inside: str | None = ""
        if stat.S_ISFIFO(mode):
            if spec.stdin_feed is None:
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
        """Wait until no box is being built, reset, prepared or closed (for checks); False on
        timeout."""
        def settled() -> bool:
            pools = [*self._pools.values(), *self._closing]
            return self._todo.empty() and all(
                len(p.ready) == p.count and not p.running for p in pools)
        with self._changed:
            return self._changed.wait_for(settled, timeout=timeout)

    def pools(self) -> dict[str | None, list[WarmBox]]:
        """The roots that have a pool now (None: the host's) and their ready boxes."""
        with self._changed:
            return {root: list(pool.ready) for root, pool in self._pools.items()}

    def owned(self) -> tuple[set[int], set[str], set[str]]:
        """What the pools themselves hold now: their bwrap pids, mount points and cgroup dirs."""
        pids: set[int] = set()
        mounts: set[str] = {self.runtime_dir}
        cgroups: set[str] = set()
        with self._changed:
            boxes = [box for pool in self._pools.values() for box in pool.ready]
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
            boxes = [box for pool in self._pools.values() for box in pool.ready]
            for pool in self._pools.values():
                pool.ready = []
        while not self._todo.empty():  # given back after the workers left
            item = self._todo.get_nowait()
            if item is not None:
                if item[2] is not None:
                    item[2].remove()
                if item[1] is not None:
                    boxes.append(item[1])
        for box in boxes:
            box.close()
        unmount_under(self.base)
        remove_tree(self.base)
        super().close()
