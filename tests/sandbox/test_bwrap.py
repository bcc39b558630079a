"""BwrapSandbox run directly (real bubblewrap and cgroups on this host), and unit tests of the
pure parts. This host has cgroup v1 only, so the v2 code is tested against a temporary directory
laid out like a v2 cgroupfs (plain files, no kernel behind them)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from khala.errors import SandboxUnavailable
from khala.model import Reason
from khala.sandbox import open_sandbox
from khala.sandbox.base import MIB, Limits, RunSpec
from khala.sandbox.bwrap import (
    RELAY,
    BwrapSandbox,
    bwrap_argv,
    check_bwrap,
    decode_status,
    traversable,
)
from khala.sandbox.cgroup_detect import detect
from khala.sandbox.cgroup_v2 import V2RunCgroup, V2Tree
from khala.sandbox.cgroups import V1Tree, own_cgroups, read_keyed
from khala.sandbox.etc import remove_stale_etc
from tests.sandbox.leaks import LeakProbe, run_cgroups
from tests.sandbox.pace import pace


@pytest.fixture()
def reachable() -> Iterator[Path]:
    """A temp dir the sandbox uid can reach (pytest's tmp_path has 0700 parents)."""
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        os.chmod(root, 0o711)
        yield Path(root)


@pytest.fixture()
def workdir(reachable: Path) -> str:
    path = reachable / "task"
    path.mkdir()
    return str(path)


def run(sandbox: BwrapSandbox, workdir: str, script: str, cancel: threading.Event | None = None,
        stdin: str | None = None, **limits: object) -> tuple[bytes, bytes, object]:
    sandbox.prepare_workdir(workdir)
    spec = RunSpec(argv=["bash", "-c", script], workdir=workdir, stdin_path=stdin,
                   limits=Limits(**limits))  # type: ignore[arg-type]
    outcome = sandbox.run(spec, cancel or threading.Event())
    return outcome.stdout, outcome.stderr, outcome.report


# ----------------------------------------------------------------------------- real runs


@pytest.mark.cgroup
def test_normal_run_outputs_and_measures(sandbox: BwrapSandbox, workdir: str) -> None:
    out, err, report = run(sandbox, workdir, "echo out; echo err >&2; id -u; pwd; echo x > made")
    assert out == b"out\n65534\n/work\n"
    assert err == b"err\n"
    assert report.reason == Reason.OK and report.exit_code == 0  # type: ignore[attr-defined]
    assert report.wall_time > 0 and report.time > 0 and report.memory > 0  # type: ignore[attr-defined]
    made = Path(workdir, "made")
    assert made.read_text() == "x\n" and made.stat().st_uid == 65534


def test_stdin_is_fed(sandbox: BwrapSandbox, workdir: str) -> None:
    Path(workdir, "in.txt").write_text("hello\n")
    out, _, report = run(sandbox, workdir, "tr a-z A-Z", stdin=os.path.join(workdir, "in.txt"))
    assert out == b"HELLO\n" and report.reason == Reason.OK  # type: ignore[attr-defined]


def test_nonzero_exit_and_signal(sandbox: BwrapSandbox, workdir: str) -> None:
    _, _, report = run(sandbox, workdir, "exit 3")
    assert (report.exit_code, report.reason) == (3, Reason.NONZERO_EXIT)  # type: ignore[attr-defined]
    _, _, report = run(sandbox, workdir, "kill -SEGV $$")
    assert (report.signal, report.reason) == (11, Reason.SIGNALED)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("script", "limits", "reason"),
    [
        pytest.param("python3 -c 'x = bytearray(256 << 20)'", {"memory": 64 * MIB},
                     Reason.MEMORY_LIMIT, marks=pytest.mark.cgroup),
        pytest.param("python3 -c 'import os\nwhile True: os.fork()'", {"pids": 16},
                     Reason.PIDS_LIMIT, marks=pytest.mark.cgroup),
        # The wall limit only stops a stuck run: on a loaded host (a full `make test` with
        # other suites) the loop may get a fifth of a core, so 1 s of CPU can take over 5 s.
        pytest.param("while :; do :; done", {"cpu_time": 1, "wall_time": 30},
                     Reason.TIME_LIMIT, marks=pytest.mark.cgroup),
        ("sleep 30", {"wall_time": 0.5}, Reason.WALL_LIMIT),
        ("yes", {"output": 64 * 1024}, Reason.OUTPUT_LIMIT),
    ],
)
def test_limits(sandbox: BwrapSandbox, workdir: str, script: str, limits: dict[str, object],
                reason: str) -> None:
    probe = LeakProbe(sandbox, os.path.dirname(workdir), exclude_children=set())
    out, _, report = run(sandbox, workdir, script,
                         **{"wall_time": 10 * pace(), **limits})  # type: ignore[arg-type]
    assert report.reason == reason, report  # type: ignore[attr-defined]
    if reason == Reason.OUTPUT_LIMIT:
        assert len(out) == 64 * 1024
    if reason == Reason.MEMORY_LIMIT:
        assert report.memory >= 60 * MIB  # type: ignore[attr-defined]
    if reason == Reason.TIME_LIMIT:  # the slack beyond the limit: starting the step
        assert 1.0 <= report.time < 1.0 + 1.0 * pace()  # type: ignore[attr-defined]
    assert [leak for leak in probe.leaks() if not leak.startswith("work dir")] == []


@pytest.mark.cgroup
def test_cancel_is_prompt_and_cleans_up(sandbox: BwrapSandbox, workdir: str) -> None:
    cancel = threading.Event()
    threading.Timer(0.2 * pace(), cancel.set).start()
    started = time.monotonic()
    before = set(sandbox.tree.leftovers(f"run-{os.getpid()}-"))  # a dead namesake's (pid reuse)
    _, _, report = run(sandbox, workdir, "sleep 30 & sleep 30", cancel=cancel,
                       wall_time=20 * pace())
    assert time.monotonic() - started < 1.0 * pace()
    assert report.reason == Reason.CANCELLED  # type: ignore[attr-defined]
    assert run_cgroups(sandbox) <= before


@pytest.mark.cgroup
def test_cpu_time_counts_every_process(sandbox: BwrapSandbox, workdir: str) -> None:
    spin = "python3 -c 'import time\nwhile time.process_time() < 0.4: pass'"
    _, _, report = run(sandbox, workdir, f"{spin} & {spin} & wait", wall_time=20)
    assert report.reason == Reason.OK  # type: ignore[attr-defined]
    assert report.time >= 0.8  # type: ignore[attr-defined]


def test_prepare_workdir_refuses_unreachable_dir(sandbox: BwrapSandbox) -> None:
    with tempfile.TemporaryDirectory() as root:
        os.chmod(root, 0o700)
        inner = os.path.join(root, "task")
        os.mkdir(inner)
        with pytest.raises(SandboxUnavailable, match="searchable"):
            sandbox.prepare_workdir(inner)


@pytest.mark.integration  # opens a real sandbox
@pytest.mark.cgroup
def test_open_sandbox_bwrap_and_cgroup_version_here() -> None:
    sandbox = open_sandbox("bwrap")
    try:
        assert sandbox.name == "bwrap"
        assert isinstance(sandbox, BwrapSandbox)
        unified = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        assert isinstance(sandbox.tree, V2Tree if unified else V1Tree)
        assert sandbox.tree.version == (2 if unified else 1)
        parents = sandbox.tree.parents()
        # v1: memory, pids, cpuacct, and cpu where it is mounted (a CPU rate)
        assert len(parents) == (1 if unified else 4 if sandbox.tree.cpu_rates else 3)
        for parent in parents:  # run cgroups go under a `khala` cgroup of the live hierarchy
            assert parent.startswith("/sys/fs/cgroup/") and parent.endswith("/khala")
            assert os.path.exists(os.path.join(parent, "cgroup.procs"))
        if unified:  # memory and pids are enabled for the runs
            enabled = Path(parents[0], "cgroup.subtree_control").read_text().split()
            assert {"memory", "pids"} <= set(enabled)
    finally:
        sandbox.close()


@pytest.mark.integration  # opens a real sandbox
def test_missing_bwrap_is_refused() -> None:
    sandbox = BwrapSandbox(bwrap="/nonexistent/bwrap")
    try:
        with pytest.raises(SandboxUnavailable, match="not installed|No such"):
            check_bwrap(sandbox)
    finally:
        sandbox.close()
    assert not os.path.exists(sandbox._etc)


@pytest.mark.integration  # opens a real sandbox
def test_stale_etc_copies_are_removed(reachable: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait(10)
    (reachable / f"khala-etc-{dead.pid}-abc").mkdir()
    (reachable / f"khala-etc-{os.getpid()}-abc").mkdir()
    (reachable / "khala-etc-other").mkdir()
    remove_stale_etc(str(reachable))
    assert sorted(p.name for p in reachable.iterdir()) == [
        f"khala-etc-{os.getpid()}-abc", "khala-etc-other"]


# ----------------------------------------------------------------------------- pure parts


def test_decode_status() -> None:
    exited = lambda code: code << 8  # noqa: E731 - a wait status "exited with code"
    assert decode_status(exited(0), killed=False) == exited(0)
    assert decode_status(exited(3), killed=False) == exited(3)
    assert os.WTERMSIG(decode_status(exited(128 + 9), killed=False)) == signal.SIGKILL
    assert decode_status(signal.SIGKILL, killed=True) == signal.SIGKILL
    assert decode_status(exited(255), killed=False) == exited(255)  # not a signal number


def test_bwrap_argv_layout(tmp_path: Path) -> None:
    (tmp_path / "usr").mkdir()
    (tmp_path / "bin").symlink_to("usr/bin")
    spec = RunSpec(argv=["bash", "x.sh"], workdir="/host/w")
    argv = bwrap_argv("/usr/bin/bwrap", spec, "/etcdir", 65534, 65534, MIB, str(tmp_path))
    joined = " ".join(argv)
    assert "--unshare-all --unshare-user --disable-userns --die-with-parent" in joined
    assert f"--ro-bind {tmp_path}/usr /usr" in joined
    assert "--symlink usr/bin /bin" in joined and "lib64" not in joined
    assert "--ro-bind /etcdir /etc" in joined
    assert "--bind /host/w /work --chdir /work" in joined
    # the sandbox's pid 1 is a shell (RELAY) waiting for the command, bwrap waiting for it
    assert argv[-8:] == ["--as-pid-1", "--", "/bin/sh", "-c", RELAY, "khala", "bash", "x.sh"]
    assert argv.index("--remount-ro") > argv.index("--tmpfs")


def test_traversable(reachable: Path) -> None:
    (reachable / "a").mkdir(mode=0o700)
    (reachable / "a" / "b").mkdir()
    assert traversable(str(reachable / "a"), 65534)
    assert not traversable(str(reachable / "a" / "b"), 65534)


def test_own_cgroups_parsing() -> None:
    text = "12:pids:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n1:name=systemd:/s\n0::/unified\n"
    assert own_cgroups(text) == {"pids": "/", "memory": "/a/b", "cpu": "/c", "cpuacct": "/c",
                                 "systemd": "/s", "": "/unified"}


def fake_v2(root: Path, enabled: str = "cpu memory pids") -> None:
    root.mkdir(exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text(enabled + "\n")
    (root / "cgroup.procs").write_text("")


def test_v2_detection_and_run_cgroup(tmp_path: Path) -> None:
    fake_v2(tmp_path)
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/\n")
    (tmp_path / "khala").mkdir()
    for name in ("cgroup.procs", "cgroup.subtree_control"):
        (tmp_path / "khala" / name).write_text("")
    tree = detect(str(tmp_path), str(self_cgroup))
    assert isinstance(tree, V2Tree) and tree.parents() == [str(tmp_path / "khala")]
    assert (tmp_path / "khala" / "cgroup.subtree_control").read_text() == "+memory +pids"
    # a run cgroup reads the v2 files (a real kernel creates them; the fake gets them by hand)
    run_dir = tmp_path / "khala" / "run-x"
    run_dir.mkdir()
    (run_dir / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    (run_dir / "memory.peak").write_text("4096\n")
    (run_dir / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (run_dir / "pids.events").write_text("max 0\n")
    (run_dir / "cgroup.procs").write_text("")
    run_cg = V2RunCgroup([str(run_dir)])
    assert run_cg.cpu_seconds() == 1.5 and run_cg.memory_peak() == 4096
    assert run_cg.oom_killed() and not run_cg.pids_limit_hit()
    assert run_cg.pids() == [] and run_cg.procs_files == [str(run_dir / "cgroup.procs")]


def test_v2_without_delegated_controllers_is_refused(tmp_path: Path) -> None:
    fake_v2(tmp_path, enabled="cpu")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/\n")
    with pytest.raises(SandboxUnavailable, match="subtree_control"):
        detect(str(tmp_path), str(self_cgroup))


def test_no_cgroups_at_all_is_refused(tmp_path: Path) -> None:
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/\n")
    with pytest.raises(SandboxUnavailable, match="no cgroup"):
        detect(str(tmp_path / "empty"), str(self_cgroup))


def test_read_keyed_ignores_junk(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("max 4\nbad\nx y\n")
    assert read_keyed(str(path)) == {"max": 4}
    assert read_keyed(str(tmp_path / "missing")) == {}


def test_parallel_runs_are_separate(sandbox: BwrapSandbox, reachable: Path) -> None:
    """Slots run steps at once from several threads: each sees only its own work dir."""
    results: dict[int, bytes] = {}
    before = set(sandbox.tree.leftovers(f"run-{os.getpid()}-"))  # a dead namesake's (pid reuse)

    def one(i: int) -> None:
        workdir = reachable / f"t{i}"
        workdir.mkdir()
        (workdir / "id").write_text(str(i))
        script = "sleep 0.2; echo $(cat id); ls /work | wc -l; ps -e | wc -l"
        out, _, report = run(sandbox, str(workdir), script)
        assert report.reason == Reason.OK  # type: ignore[attr-defined]
        results[i] = out

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [0, 1, 2, 3]
    for i, out in results.items():
        own_id, entries, processes = out.decode().split()
        assert (own_id, entries) == (str(i), "1")
        assert int(processes) <= 6  # header, bwrap's pid 1, bash, sleep/ps/wc: nothing else
    assert run_cgroups(sandbox) <= before


@pytest.mark.cgroup
def test_kill_all_without_waiting_still_kills(sandbox: BwrapSandbox) -> None:
    """`kill(wait=False)` (the core's first kill at a limit) is one round of SIGKILL over the
    run cgroup, not a no-op: a process in it dies without anyone waiting in kill_all."""
    cgroup = sandbox.tree.create(memory=None, pids=8)
    files = cgroup.procs_files

    def join() -> None:
        for path in files:
            with open(path, "w") as fh:
                fh.write(str(os.getpid()))

    proc = subprocess.Popen(["sleep", "60"], preexec_fn=join)
    try:
        assert cgroup.pids() == [proc.pid]
        assert cgroup.kill_all(timeout=0.0) is False  # signalled, not yet known to be gone
        assert proc.wait(10) == -signal.SIGKILL
        assert cgroup.remove()
    finally:
        proc.kill()
        proc.wait(10)
        cgroup.remove()


def test_v2_a_namespace_root_with_processes_is_taken_over_through_a_leaf(tmp_path: Path) -> None:
    """A container's cgroup namespace (its root has `cgroup.events`, unlike the true root):
    its processes move to `node/`, then memory and pids (and cpu, offered here) are enabled for
    `khala/`."""
    fake_v2(tmp_path, enabled="")
    (tmp_path / "cgroup.events").write_text("populated 1\n")
    (tmp_path / "cgroup.procs").write_text("7\n")
    (tmp_path / "khala").mkdir()  # what the kernel makes in a new cgroup, by hand here
    for name in ("cgroup.procs", "cgroup.subtree_control"):
        (tmp_path / "khala" / name).write_text("")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/\n")
    tree = detect(str(tmp_path), str(self_cgroup))
    assert tree.parents() == [str(tmp_path / "khala")]
    assert (tmp_path / "node" / "cgroup.procs").read_text() == "7"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"


def test_v2_the_true_root_without_controllers_is_refused_not_changed(tmp_path: Path) -> None:
    fake_v2(tmp_path, enabled="")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/\n")
    with pytest.raises(SandboxUnavailable, match="Delegate=yes"):
        detect(str(tmp_path), str(self_cgroup))
    assert (tmp_path / "cgroup.subtree_control").read_text() == "\n"
    assert not (tmp_path / "node").exists()
