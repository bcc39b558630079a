"""A cached file handed to a run (Sandbox.place_file): under bwrap, cold and warm, a read-only
bind of the file itself — the run reads it (as a file and as stdin) and can change neither its
bytes, its mode nor its name — gone with the work area, the host file untouched."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from khala.sandbox.base import Limits, RunSpec
from khala.sandbox.bwrap import PLACE_COPY_MAX, BwrapSandbox
from khala.sandbox.plain import PlainSandbox

ATTACKS = r"""
cat /work/execute.in | sha256sum | cut -c1-64
sha256sum < /work/data/answer.txt | cut -c1-64
echo x >> /work/execute.in 2>/dev/null && echo WROTE
chmod 666 /work/execute.in 2>/dev/null && echo CHMODDED
rm -f /work/execute.in 2>/dev/null; test -e /work/execute.in || echo REMOVED
mv /work/data/answer.txt /work/moved 2>/dev/null && echo MOVED
truncate -s 0 /work/data/answer.txt 2>/dev/null && echo TRUNCATED
exit 0
"""

# What a run may try on a copy: every change refused, the bytes the same after.
ON_A_COPY = r"""
sha256sum < /work/execute.in | cut -c1-64
sha256sum < /work/data/answer.txt | cut -c1-64
echo x >> /work/execute.in 2>/dev/null && echo WROTE
chmod 666 /work/execute.in 2>/dev/null && echo CHMODDED
truncate -c -s 0 /work/data/answer.txt 2>/dev/null && echo TRUNCATED
sha256sum < /work/execute.in | cut -c1-64
sha256sum < /work/data/answer.txt | cut -c1-64
exit 0
"""


@pytest.fixture
def cached() -> Iterator[Path]:
    """A cache-like host directory (root's, 0700) holding one 0444 file of 3 MiB."""
    with tempfile.TemporaryDirectory(prefix="khala-test-cache-") as root:
        path = Path(root) / "blob"
        path.write_bytes(os.urandom(3 * 1024 * 1024))
        path.chmod(0o444)
        yield path


@pytest.fixture
def workdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        os.chmod(root, 0o711)
        path = os.path.join(root, "task")
        os.mkdir(path)
        yield path


def place_both(sandbox: BwrapSandbox, source: Path, workdir: str) -> str:
    """`source` placed as the run's execute.in and data/answer.txt in the opened `workdir`;
    the execute.in path."""
    os.mkdir(os.path.join(workdir, "data"))
    sandbox.prepare_workdir(workdir)
    inside = os.path.join(workdir, "execute.in")
    sandbox.place_file(str(source), inside)
    sandbox.place_file(str(source), os.path.join(workdir, "data", "answer.txt"))
    return inside


def test_bound_files_are_read_in_place_and_cannot_be_changed(
        sandbox: BwrapSandbox, cached: Path, workdir: str) -> None:
    before = hashlib.sha256(cached.read_bytes()).hexdigest()
    sandbox.open_workdir(workdir, 64 * 1024 * 1024)
    try:
        inside = place_both(sandbox, cached, workdir)
        assert os.stat(inside).st_ino == cached.stat().st_ino  # the file itself, no copy
        spec = RunSpec(argv=["bash", "-c", ATTACKS], workdir=workdir, stdin_path=inside,
                       limits=Limits(wall_time=20))
        outcome = sandbox.run(spec, threading.Event())
        lines = outcome.stdout.decode().split()
        assert lines == [before, before], outcome
    finally:
        sandbox.close_workdir(workdir)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == before
    assert cached.stat().st_mode & 0o777 == 0o444 and cached.stat().st_uid == os.geteuid()
    with open("/proc/self/mountinfo") as fh:
        assert workdir not in fh.read()  # the binds went with the work area


def test_without_a_sandbox_the_file_is_linked_or_copied(cached: Path, workdir: str) -> None:
    target = os.path.join(workdir, "execute.in")
    PlainSandbox().place_file(str(cached), target)
    assert Path(target).read_bytes() == cached.read_bytes()


def test_a_small_file_is_copied_and_the_run_cannot_change_the_copy(
        sandbox: BwrapSandbox, workdir: str) -> None:
    """At most PLACE_COPY_MAX bytes: a root-owned 0444 copy (no mount call). The run reads it
    and cannot write, chmod or truncate it (it may unlink or rename a name in its own dir, as
    any of its files, which changes nothing the judge reads); the host file is untouched."""
    with tempfile.TemporaryDirectory(prefix="khala-test-cache-") as root:
        small = Path(root) / "blob"
        small.write_bytes(os.urandom(PLACE_COPY_MAX))
        small.chmod(0o444)
        before = hashlib.sha256(small.read_bytes()).hexdigest()
        sandbox.open_workdir(workdir, 64 * 1024 * 1024)
        try:
            inside = place_both(sandbox, small, workdir)
            copy = os.stat(inside)
            assert copy.st_ino != small.stat().st_ino and copy.st_uid == 0
            assert copy.st_mode & 0o777 == 0o444
            with open("/proc/self/mountinfo") as fh:
                assert inside not in fh.read()  # no bind made
            spec = RunSpec(argv=["bash", "-c", ON_A_COPY], workdir=workdir, stdin_path=inside,
                           limits=Limits(wall_time=20))
            outcome = sandbox.run(spec, threading.Event())
            assert outcome.stdout.decode().split() == [before] * 4, outcome
        finally:
            sandbox.close_workdir(workdir)
        assert hashlib.sha256(small.read_bytes()).hexdigest() == before
