"""Steps in an image (docs/images.md): the real bwrap sandbox, cold and warm (a warm pool opens a
pool of boxes for the image: its first step may run cold, the next ones warm; the warm-only
checks are tests/sandbox/test_warm_images.py), with a tiny image built here from the host's bash
and Debian's busybox-static. Its `/` is the image's (a file only the image has is there, the
host's compilers are not), nothing in it can be written, and the limits hold in it as on the
host's root."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from khala.images.tarball import unpack
from khala.model import Reason, StepReport
from khala.sandbox.base import MIB, Limits, RunSpec
from khala.sandbox.bwrap import BwrapSandbox
from tests.images.tars import MARKER, MARKER_TEXT, tiny_tar
from tests.sandbox.leaks import LeakProbe
from tests.sandbox.pace import pace

pytestmark = pytest.mark.integration  # real sandboxes (bubblewrap, cgroups, mounts)

HOST_ONLY = "/usr/bin/gcc"  # installed by scripts/install-deps.sh; never in the tiny image


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="khala-test-images-") as root:
        os.chmod(root, 0o711)
        yield Path(root)


@pytest.fixture(scope="module")
def image(base: Path) -> str:
    """The tiny image, unpacked as an executor unpacks it (khala/images/tarball.py)."""
    work = base / "build"
    work.mkdir()
    root = base / "image"
    root.mkdir()
    unpack(tiny_tar(str(work / "tiny.tar"), str(work)), str(root), 1 << 30)
    return str(root)


def snapshot(root: str) -> dict[str, tuple[int, int, int]]:
    """Every entry of the image: (mode, size, mtime)."""
    found = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            st = os.lstat(os.path.join(folder, name))
            found[os.path.relpath(os.path.join(folder, name), root)] = (
                st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def run(sandbox: BwrapSandbox, base: Path, script: str, root: str | None,
        **limits: object) -> tuple[str, str, StepReport]:
    workdir = tempfile.mkdtemp(prefix="task-", dir=base)
    sandbox.prepare_workdir(workdir)
    spec = RunSpec(argv=["bash", "-c", script], workdir=workdir, root=root,
                   limits=Limits(**{"wall_time": 20 * pace(), **limits}))  # type: ignore[arg-type]
    outcome = sandbox.run(spec, threading.Event())
    return outcome.stdout.decode(), outcome.stderr.decode(), outcome.report


def test_the_steps_root_is_the_images(sandbox: BwrapSandbox, base: Path, image: str) -> None:
    assert os.path.exists(HOST_ONLY) and not os.path.lexists(MARKER)  # the host's side
    out, err, report = run(sandbox, base, f"cat {MARKER}; ls {HOST_ONLY} || echo no-gcc; "
                           "id -u; pwd; ls /; cat /etc/passwd", image)
    assert report.reason == Reason.OK, (report, err)
    lines = out.splitlines()
    assert lines[:4] == [MARKER_TEXT.strip(), "no-gcc", "65534", "/work"]
    assert "khala-image-marker" in lines and "usr" not in lines  # the image has no /usr
    assert any(line.startswith("sandbox:x:65534:") for line in lines)  # the generated identity
    # the same sandbox, without an image: the host's root again
    out, _, report = run(sandbox, base, f"ls {HOST_ONLY}; cat {MARKER} || echo no-marker", None)
    assert report.reason == Reason.OK and out.split() == [HOST_ONLY, "no-marker"]


def test_nothing_in_the_image_can_be_written(sandbox: BwrapSandbox, base: Path,
                                             image: str) -> None:
    before = snapshot(image)
    attempts = [f"echo x > {MARKER}", "echo x >> /etc/passwd", "touch /new", "mkdir /bin/new",
                "rm -f /bin/sh", "rm -f /bin/busybox", "touch /etc/new", "chmod 777 /bin",
                "ln -s /x /bin/new", "mv /bin/cat /bin/cat2"]
    script = "; ".join(f"{{ {a}; }} 2>/dev/null && echo WROTE: {a!r}" for a in attempts)
    out, err, report = run(sandbox, base, script + "; echo w > /work/ok; echo t > /tmp/ok; "
                           "cat /work/ok /tmp/ok", image)
    assert report.reason == Reason.OK, (report, err)
    assert out == "w\nt\n"  # no attempt wrote; the work dir and /tmp are writable
    assert snapshot(image) == before
    assert Path(image, MARKER.lstrip("/")).read_text() == MARKER_TEXT


@pytest.mark.cgroup
@pytest.mark.parametrize(("script", "limits", "reason"), [
    ("printf -v a '%0300000000d' 0", {"memory": 64 * MIB}, Reason.MEMORY_LIMIT),
    ("for ((i = 0; i < 64; i++)); do sleep 5 & done; wait", {"pids": 16}, Reason.PIDS_LIMIT),
    ("while :; do :; done", {"cpu_time": 1}, Reason.TIME_LIMIT),
    ("sleep 30", {"wall_time": 0.5}, Reason.WALL_LIMIT),
])
def test_the_limits_hold_in_the_image(sandbox: BwrapSandbox, base: Path, image: str,
                                      script: str, limits: dict[str, object],
                                      reason: str) -> None:
    probe = LeakProbe(sandbox, str(base), exclude_children=set())
    _, err, report = run(sandbox, base, script, image, **limits)
    assert report.reason == reason, (report, err)
    if reason == Reason.MEMORY_LIMIT:
        assert report.memory >= 60 * MIB
    assert [leak for leak in probe.leaks() if not leak.startswith("work dir")] == []
