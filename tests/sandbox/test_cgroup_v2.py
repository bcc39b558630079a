"""Where the executor may create run cgroups on a cgroup v2 kernel (khala/sandbox/cgroup_detect.py):
a cgroup not delegated to it is refused with what to do; one delegated by systemd
(`Delegate=yes`) or a container's cgroup namespace is taken over; a cgroup that is not ours is
left alone. Each case runs a real process in a cgroup made for it (a cgroup namespace and a
mount namespace of its own where it plays a container).

These need the unified hierarchy with memory and pids enabled at its root: this host is cgroup
v1, so they run in the cgroup v2 guest of tests/guest (`pytest -m cgroup` there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.servers import REPO

ROOT = Path("/sys/fs/cgroup")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.cgroup,
    pytest.mark.skipif(not (ROOT / "cgroup.controllers").exists(),
                       reason="needs cgroup v2: runs in the cgroup v2 guest (tests/guest)"),
]

# Runs in the cgroup under test: detect() there, then one limited step in a run cgroup.
PROBE = """
import json, os, threading
from khala.errors import SandboxUnavailable
from khala.sandbox.base import MIB, Limits, RunSpec
from khala.sandbox.bwrap import BwrapSandbox
from khala.sandbox.cgroup_detect import detect
try:
    tree = detect()
except SandboxUnavailable as exc:
    print(json.dumps({"refused": str(exc)}))
    raise SystemExit(0)
box = BwrapSandbox(tree=tree)
work = os.environ["PROBE_WORK"]
box.prepare_workdir(work)
spec = RunSpec(argv=["python3", "-c", "x = bytearray(96 << 20)"], workdir=work,
               limits=Limits(wall_time=60, memory=32 * MIB, pids=8))
outcome = box.run(spec, threading.Event())
print(json.dumps({"parent": tree.parents()[0], "reason": outcome.report.reason,
                  "mine": open("/proc/self/cgroup").read().strip(),
                  "leftovers": tree.leftovers(f"run-{os.getpid()}-")}))
box.close()
"""


def make_cgroup(path: Path, enable: str = "") -> None:
    path.mkdir()
    if enable:
        (path / "cgroup.subtree_control").write_text(enable)


def remove_cgroups(top: Path) -> None:
    """Remove `top` and every cgroup under it, deepest first (they are empty by then)."""
    if not top.exists():
        return
    for dirpath, _, _ in sorted(os.walk(top), key=lambda d: -d[0].count("/")):
        os.rmdir(dirpath)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A cgroup of this test's own under the root (removed at the end)."""
    top = ROOT / f"khala-test-{os.getpid()}"
    make_cgroup(top, "+memory +pids")
    try:
        yield top
    finally:
        remove_cgroups(top)


@pytest.fixture
def work() -> Iterator[str]:
    base = Path(tempfile.gettempdir()) / f"khala-v2-{os.getpid()}"
    base.mkdir(mode=0o711)
    (base / "w").mkdir()
    try:
        yield str(base / "w")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def probe(cgroup: Path, work: str, container: bool = False) -> dict[str, object]:
    """Run PROBE as a process that starts in `cgroup`; as a container (its own cgroup and
    mount namespaces, cgroup2 mounted afresh) when asked."""
    argv = [sys.executable, "-c", PROBE]
    if container:
        remount = 'umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"'
        argv = ["unshare", "--cgroup", "--mount", "--propagation", "private", "--",
                "sh", "-c", remount, "sh", *argv]

    def join() -> None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    done = subprocess.run(argv, cwd=REPO, preexec_fn=join, capture_output=True, text=True,
                          env={**os.environ, "PROBE_WORK": work}, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_a_cgroup_without_the_controllers_is_refused_with_what_to_do(scratch: Path,
                                                                    work: str) -> None:
    """A container whose cgroup was given no controllers (its parent enables none for it)."""
    bare = scratch / "no-controllers"
    make_cgroup(bare)  # scratch enables memory, pids for its children …
    inner = bare / "ctr"
    make_cgroup(inner)  # … but `bare` enables none for `inner`
    answer = probe(inner, work, container=True)
    refused = str(answer.get("refused"))
    assert "memory and pids not available" in refused, answer
    assert "Delegate=yes" in refused and "docs/sandbox.md" in refused, refused
    assert sorted(p.name for p in inner.iterdir() if p.is_dir()) == []  # nothing created


def test_a_container_cgroup_namespace_is_taken_over(scratch: Path, work: str) -> None:
    ctr = scratch / "ctr"
    make_cgroup(ctr)
    answer = probe(ctr, work, container=True)
    # Inside, the namespace's root is `ctr`: the process moved to its leaf `node`, the runs
    # went under `khala`, where the memory limit held and nothing was left.
    assert answer["parent"] == "/sys/fs/cgroup/khala", answer
    assert answer["mine"] == "0::/node", answer
    assert answer["reason"] == "memory_limit" and answer["leftovers"] == [], answer
    assert set((ctr / "cgroup.subtree_control").read_text().split()) >= {"memory", "pids"}


def test_a_systemd_delegated_service_cgroup_is_taken_over(scratch: Path, work: str) -> None:
    service = scratch / "khala-executor.service"
    make_cgroup(service)
    os.setxattr(service, "trusted.delegate", b"1")  # what systemd does for Delegate=yes
    answer = probe(service, work)
    assert answer["parent"] == str(service / "khala"), answer
    assert answer["mine"] == f"0::/{scratch.name}/{service.name}/node", answer
    assert answer["reason"] == "memory_limit" and answer["leftovers"] == [], answer


def test_a_service_cgroup_not_delegated_is_left_alone(scratch: Path, work: str) -> None:
    """Not ours to change: the runs go under the root's `khala` (this process is root there)."""
    service = scratch / "other.service"
    make_cgroup(service)
    answer = probe(service, work)
    assert answer["parent"] == "/sys/fs/cgroup/khala", answer
    assert answer["mine"] == f"0::/{scratch.name}/{service.name}", answer  # not moved
    assert (service / "cgroup.subtree_control").read_text().split() == []
    assert not (service / "khala").exists() and not (service / "node").exists()
    assert answer["reason"] == "memory_limit" and answer["leftovers"] == [], answer
