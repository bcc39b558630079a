"""Warm boxes in images (docs/images.md, "Warm boxes"): real bwrap, real images without Python.

Two images are assembled here in seconds: the tiny one of tests/images/tars.py (the host's bash
and the libraries it loads, Debian's busybox-static) and one of busybox-static alone (no C
library, no loader: /bin/sh is busybox's). Neither has a Python, yet a box's init runs in both
(the host's interpreter is lent to it while it starts). Each pool here keeps ONE box per root,
so consecutive steps of an image run in the same box: the tests check it is the same box (its
bwrap process and its count of steps), and that its steps see the image's `/` (and not the
interpreter lent to the init), cannot write it, keep their limits and find nothing of the step
before. Then the bound on image pools and the closing of idle ones.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from khala.errors import SandboxUnavailable
from khala.images.tarball import unpack
from khala.model import Reason, StepReport
from khala.sandbox.base import MIB, Limits, RunSpec
from khala.sandbox.bwrap import check_bwrap
from khala.sandbox.warm import WarmSandbox
from khala.sandbox.warm.box import WarmBox
from tests.fixtures.servers import missing
from tests.images.tars import MARKER, MARKER_TEXT, tiny_tar
from tests.sandbox.leaks import mounts
from tests.sandbox.pace import pace

pytestmark = pytest.mark.integration  # real sandboxes (bubblewrap, cgroups, mounts)

BUSYBOX_APPLETS = ("cat", "ls", "echo", "touch", "mkdir", "rm", "ln", "chmod", "mv", "sleep")


def open_pool(size: int = 1, **options: object) -> WarmSandbox:
    try:
        pool = check_bwrap(WarmSandbox(size, **options))  # type: ignore[arg-type]
    except SandboxUnavailable as exc:  # pragma: no cover - depends on the host
        missing(f"bwrap sandbox unavailable: {exc}")
    assert isinstance(pool, WarmSandbox)
    return pool


def close_pool(pool: WarmSandbox) -> None:
    """Close it and check it left no mount behind (its stages, the lent /usr)."""
    base = pool.base
    pool.close()
    assert mounts([base]) == set() and not os.path.exists(base)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="khala-test-warm-images-") as root:
        os.chmod(root, 0o711)
        yield Path(root)


def unpacked(base: Path, name: str, tar: str) -> str:
    root = base / name
    root.mkdir()
    unpack(tar, str(root), 1 << 30)
    return str(root)


@pytest.fixture(scope="module")
def tiny(base: Path) -> str:
    work = base / "build-tiny"
    work.mkdir()
    return unpacked(base, "tiny", tiny_tar(str(work / "tiny.tar"), str(work)))


@pytest.fixture(scope="module")
def busybox(base: Path) -> str:
    """An image of busybox-static alone: no C library, no loader, no bash."""
    work = base / "build-busybox" / "root"
    (work / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", work / "bin" / "busybox")
    for applet in ("sh", *BUSYBOX_APPLETS):
        (work / "bin" / applet).symlink_to("busybox")
    (work / MARKER.lstrip("/")).write_text(MARKER_TEXT)
    tar = str(work.parent / "busybox.tar")
    with tarfile.open(tar, "w") as out:
        out.add(str(work), arcname=".")
    return unpacked(base, "busybox", tar)


@pytest.fixture(scope="module", params=["tiny", "busybox"])
def image(request: pytest.FixtureRequest) -> str:
    root = request.getfixturevalue(request.param)
    assert not any("python" in name for _, _, names in os.walk(root) for name in names)
    return str(root)


@pytest.fixture(scope="module")
def pool() -> Iterator[WarmSandbox]:
    box = open_pool()
    yield box
    close_pool(box)


def step(pool: WarmSandbox, base: Path, root: str | None, script: str,
         **limits: object) -> tuple[str, str, StepReport]:
    """`script` under the image's /bin/sh, in a fresh work dir of its own (a task's)."""
    workdir = tempfile.mkdtemp(prefix="khala-run-", dir=base)
    pool.open_workdir(workdir, 64 * MIB)
    try:
        pool.prepare_workdir(workdir)
        spec = RunSpec(argv=["/bin/sh", "-c", script], workdir=workdir, root=root,
                       limits=Limits(**{"wall_time": 20 * pace(), **limits}))  # type: ignore[arg-type]
        outcome = pool.run(spec, threading.Event())
    finally:
        pool.close_workdir(workdir)
        os.rmdir(workdir)
    return (outcome.stdout.decode(errors="replace"),
            outcome.stderr.decode(errors="replace") + outcome.detail, outcome.report)


def the_box(pool: WarmSandbox, root: str) -> WarmBox:
    """The only box of `root`'s pool, once it is ready again (a step in the image opens the
    pool first: that one may run cold)."""
    if root not in pool.pools():
        step(pool, Path(os.path.dirname(root)), root, "true")
    assert pool.settle(60), "the warm pool did not settle"
    boxes = pool.pools()[root]
    assert len(boxes) == 1, boxes
    return boxes[0]


def warm_step(pool: WarmSandbox, base: Path, root: str, script: str,
              **limits: object) -> tuple[str, str, StepReport]:
    """`script` in the image, checked to have run in the pool's one box of the image."""
    box = the_box(pool, root)
    bwrap, steps = box.proc.pid if box.proc else 0, box.steps
    result = step(pool, base, root, script, **limits)
    assert the_box(pool, root) is box and box.steps == steps + 1, "the step ran cold"
    assert box.proc is not None and box.proc.pid == bwrap
    return result


def test_steps_in_an_image_run_warm_and_see_its_root(pool: WarmSandbox, base: Path,
                                                     image: str) -> None:
    pids = []
    for _ in range(3):
        out, err, report = warm_step(pool, base, image, f"cat {MARKER}; echo $$; ls /; "
                                     "echo tmp:; ls -A /tmp /dev/shm; echo mounts:; "
                                     "cat /proc/self/mountinfo; echo init:; cat /proc/1/cmdline")
        assert report.reason == Reason.OK, (report, err)
        lines = out.splitlines()
        assert lines[0] == MARKER_TEXT.strip()
        pids.append(int(lines[1]))
        listed = lines[2:lines.index("tmp:")]
        assert sorted(listed) == sorted(os.listdir(image))  # the image's `/`, nothing else
        assert "usr" not in listed or os.path.isdir(os.path.join(image, "usr"))
        empty = lines[lines.index("tmp:") + 1:lines.index("mounts:")]
        assert sorted(x for x in empty if x) == ["/dev/shm:", "/tmp:"]  # no lent interpreter
        mounts = [line.split() for line in lines[lines.index("mounts:") + 1:lines.index("init:")]]
        assert not [m for m in mounts if m[3] == "/usr"]  # nothing of the host's /usr mounted
        init = out.split("init:\n", 1)[1]
        assert "/proc/self/fd/" in init and "python" in init  # pid 1 is the box's init
        assert "/dev/shm/" in init  # started from the lent tree, gone now
    assert pids == sorted(pids) and len(set(pids)) == 3  # one pid namespace, reused


def test_nothing_of_a_step_is_left_for_the_next(pool: WarmSandbox, base: Path,
                                                image: str) -> None:
    out, err, first = warm_step(pool, base, image, """
        echo a > /tmp/a; mkdir /dev/shm/d; echo b > /dev/shm/d/b; export LEFT=over
        sleep 300 & (sleep 301 &) ; i=0; while [ $i -lt 100000 ]; do i=$((i + 1)); done
        echo done""")
    assert first.reason == Reason.OK and out == "done\n", (first, err)
    out, err, second = warm_step(pool, base, image, """
        ls -A /tmp /dev/shm; echo "${LEFT-unset}"
        for p in /proc/[0-9]*; do [ "${p#/proc/}" = $$ ] || echo "${p#/proc/}"; done""")
    assert second.reason == Reason.OK, (second, err)
    words = out.split()
    assert sorted(words[:2]) == ["/dev/shm:", "/tmp:"], out  # both empty
    assert words[2:] == ["unset", "1"], out  # no environment, and only the init is left
    assert second.time < first.time / 2  # the counters started from zero again


def test_nothing_in_the_image_can_be_written(pool: WarmSandbox, base: Path, image: str) -> None:
    before = {str(p): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns)
              for p in Path(image).rglob("*")}
    attempts = [f"echo x > {MARKER}", "touch /new", "mkdir /bin/new", "rm -f /bin/sh",
                "rm -f /bin/busybox", "touch /etc/new", "chmod 777 /bin", "ln -s /x /bin/new",
                "mv /bin/cat /bin/cat2", "echo x >> /etc/passwd"]
    script = "; ".join(f"{{ {a}; }} 2>/dev/null && echo WROTE: '{a}'" for a in attempts)
    out, err, report = warm_step(pool, base, image, script + "; echo w > /work/ok; "
                                 "echo t > /tmp/ok; cat /work/ok /tmp/ok")
    assert report.reason == Reason.OK, (report, err)
    assert out == "w\nt\n"
    after = {str(p): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns)
             for p in Path(image).rglob("*")}
    assert after == before


@pytest.mark.cgroup
@pytest.mark.parametrize(("script", "limits", "reason"), [
    ("printf -v a '%0300000000d' 0", {"memory": 64 * MIB}, Reason.MEMORY_LIMIT),
    ("for ((i = 0; i < 64; i++)); do sleep 5 & done; wait", {"pids": 16}, Reason.PIDS_LIMIT),
    ("while :; do :; done", {"cpu_time": 1}, Reason.TIME_LIMIT),
    ("sleep 30", {"wall_time": 0.5}, Reason.WALL_LIMIT),
])
def test_the_limits_hold_in_a_warm_box_of_the_image(pool: WarmSandbox, base: Path, tiny: str,
                                                    script: str, limits: dict[str, object],
                                                    reason: str) -> None:
    _, err, report = warm_step(pool, base, tiny, f"exec bash -c '{script}'", **limits)
    assert report.reason == reason, (report, err)
    if reason == Reason.MEMORY_LIMIT:
        assert report.memory >= 60 * MIB
    out, err, report = warm_step(pool, base, tiny, "echo fine")  # the box goes on, clean
    assert (out, report.reason) == ("fine\n", Reason.OK), err


def test_image_pools_are_bounded_and_idle_ones_closed(base: Path, tiny: str,
                                                      busybox: str) -> None:
    pool = open_pool(images=1, idle=2.0)
    try:
        the_box(pool, tiny)
        assert set(pool.pools()) == {None, tiny}
        # the one place is taken by an image used just now: a step in another runs cold
        out, err, report = step(pool, base, busybox, f"cat {MARKER}")
        assert (out, report.reason) == (MARKER_TEXT, Reason.OK), err
        assert set(pool.pools()) == {None, tiny}
        deadline = time.monotonic() + 60
        while tiny in pool.pools() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(pool.pools()) == {None}  # closed, unused for `idle` seconds
        box = the_box(pool, busybox)  # the place is free again
        assert pool.settle(60) and pool.owned()[0] == {b.proc.pid for b in (
            *pool.pools()[None], box) if b.proc}  # the host's box and this one: no other
    finally:
        close_pool(pool)


def test_an_image_unpacked_again_gets_new_boxes(pool: WarmSandbox, base: Path,
                                                busybox: str) -> None:
    root = str(base / "again")
    shutil.copytree(busybox, root, symlinks=True)
    old = the_box(pool, root)
    os.rename(root, root + ".gone")  # evicted (khala/executor/images.py), then unpacked again
    shutil.copytree(root + ".gone", root, symlinks=True)
    out, err, report = step(pool, base, root, f"cat {MARKER}")
    assert (out, report.reason) == (MARKER_TEXT, Reason.OK), err
    new = the_box(pool, root)
    assert new is not old and old.proc is not None and old.proc.poll() is not None
    out, err, report = warm_step(pool, base, root, "ls /")
    assert sorted(out.split()) == sorted(os.listdir(root)), err


def test_an_image_with_a_preload_file_runs_cold(pool: WarmSandbox, base: Path,
                                               busybox: str) -> None:
    """The loader would load what /etc/ld.so.preload names into the init: such an image gets no
    warm boxes, its steps run cold (and well)."""
    root = str(base / "preload")
    shutil.copytree(busybox, root, symlinks=True)
    Path(root, "etc", "ld.so.preload").write_text("/lib/nothing.so\n")
    for _ in range(2):
        out, err, report = step(pool, base, root, f"cat {MARKER}")
        assert (out, report.reason) == (MARKER_TEXT, Reason.OK), err
        assert pool.settle(60) and root not in pool.pools()
    os.unlink(os.path.join(root, "etc", "ld.so.preload"))  # found through a link as well
    os.symlink("../bin/ld.so.preload", os.path.join(root, "etc", "ld.so.preload"))
    Path(root, "bin", "ld.so.preload").write_text("/lib/nothing.so\n")
    step(pool, base, root, "true")
    assert pool.settle(60) and root not in pool.pools()


def test_an_image_whose_boxes_cannot_start_costs_one_attempt(
        base: Path, busybox: str, caplog: pytest.LogCaptureFixture) -> None:
    """Its /bin/sh is a script run by busybox's `true`: a step runs (cold) and exits 0 at
    once, saying nothing; a box's stem (that shell) never comes up, so no box can be prepared.
    One box is tried, not the pool's size, and not again."""
    root = str(base / "no-shell")
    shutil.copytree(busybox, root, symlinks=True)
    os.unlink(os.path.join(root, "bin", "sh"))
    Path(root, "bin", "sh").write_text("#!/bin/busybox true\n")
    os.chmod(os.path.join(root, "bin", "sh"), 0o755)
    caplog.set_level("WARNING", logger="khala.sandbox.warm.pool")
    pool = open_pool(3)  # three boxes per root
    try:
        for _ in range(3):
            out, err, report = step(pool, base, root, "echo never")
            assert (out, report.reason, report.exit_code) == ("", Reason.OK, 0), err
            assert pool.settle(60)
        assert pool.pools()[root] == []
        failed = [r for r in caplog.records if "is retired" in r.getMessage()]
        assert len(failed) == 1, [r.getMessage() for r in caplog.records]
        out, err, report = step(pool, base, busybox, "echo fine")  # another image: its boxes
        assert (out, report.reason) == ("fine\n", Reason.OK), err
        assert pool.settle(60) and len(pool.pools()[busybox]) == 3
    finally:
        close_pool(pool)
