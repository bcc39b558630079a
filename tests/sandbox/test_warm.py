"""Warm sandboxes: nothing of a step survives into the next step in the same warm box.

A pool of ONE box, so consecutive steps run in the same bubblewrap sandbox (the tests check it is
the same box: the same bwrap process). Each case runs a hostile step A, then a step B that looks
for what A left: files in /tmp, /dev/shm and /work, background processes, cgroup limits and
counters, environment and rlimits, IPC objects; and A's attacks on the box's init itself.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from khala.errors import SandboxUnavailable
from khala.model import Reason, StepReport
from khala.sandbox.base import MIB, Limits, RunSpec
from khala.sandbox.bwrap import check_bwrap
from khala.sandbox.warm import WarmSandbox
from tests.fixtures.servers import missing
from tests.sandbox.leaks import LeakProbe
from tests.sandbox.pace import pace

pytestmark = pytest.mark.integration  # real warm sandboxes (bubblewrap, cgroups, mounts)


@pytest.fixture(scope="module")
def pool() -> Iterator[WarmSandbox]:
    try:
        box = check_bwrap(WarmSandbox(1))
    except SandboxUnavailable as exc:  # pragma: no cover - depends on the host
        missing(f"bwrap sandbox unavailable: {exc}")
    assert isinstance(box, WarmSandbox)
    yield box
    box.close()


@pytest.fixture()
def base() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="khala-test-warm-") as root:
        os.chmod(root, 0o711)
        yield root


def box_pid(pool: WarmSandbox) -> int:
    """The bwrap pid of the pool's only box, once it is ready again."""
    assert pool.settle(30), "the warm pool did not settle"
    pids = pool.owned()[0]
    assert len(pids) == 1, pids
    return next(iter(pids))


def step(pool: WarmSandbox, base: str, script: str, env: dict[str, str] | None = None,
         **limits: object) -> tuple[str, str, StepReport]:
    """Run `script` in a fresh work dir of its own (a task's), as the executor does."""
    workdir = tempfile.mkdtemp(prefix="khala-run-", dir=base)
    pool.open_workdir(workdir, 64 * MIB)
    try:
        pool.prepare_workdir(workdir)
        spec = RunSpec(argv=["bash", "-c", script], workdir=workdir, env=env or {},
                       limits=Limits(**{"wall_time": 20, **limits}))  # type: ignore[arg-type]
        outcome = pool.run(spec, threading.Event())
    finally:
        pool.close_workdir(workdir)
        os.rmdir(workdir)
    return outcome.stdout.decode(), outcome.stderr.decode() + outcome.detail, outcome.report


def test_steps_reuse_the_same_box(pool: WarmSandbox, base: str) -> None:
    first = box_pid(pool)
    for _ in range(3):
        out, _, report = step(pool, base, "echo ok")
        assert (out, report.reason) == ("ok\n", Reason.OK)
    assert box_pid(pool) == first


def test_a_step_runs_in_the_box_with_its_input_file(pool: WarmSandbox, base: str) -> None:
    """Warm, not cold: pid 1 of the step's namespace is the box's init (a cold bwrap runs
    no init), and the stem's shell gave it its input file, its cwd and nothing else."""
    first = box_pid(pool)
    workdir = tempfile.mkdtemp(prefix="khala-run-", dir=base)
    pool.open_workdir(workdir, 64 * MIB)
    try:
        pool.prepare_workdir(workdir)
        with open(os.path.join(workdir, "execute.in"), "w") as fh:
            fh.write("the input\n")
        os.chmod(os.path.join(workdir, "execute.in"), 0o644)
        script = "cat; pwd; tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc/self/fd"
        spec = RunSpec(argv=["bash", "-c", script],
                       workdir=workdir, stdin_path=os.path.join(workdir, "execute.in"),
                       limits=Limits(wall_time=20))
        outcome = pool.run(spec, threading.Event())
    finally:
        pool.close_workdir(workdir)
        os.rmdir(workdir)
    lines = outcome.stdout.decode().splitlines()
    assert outcome.report.reason == Reason.OK, outcome
    assert lines[:2] == ["the input", "/work"], lines
    assert "/proc/self/fd/" in lines[2] and "python" in lines[2], lines
    assert lines[3:] == ["0", "1", "2", "3"], lines  # ls's own fd 3: no control pipe left
    assert box_pid(pool) == first


def test_files_in_tmp_shm_and_work_do_not_survive(pool: WarmSandbox, base: str) -> None:
    first = box_pid(pool)
    out, err, report = step(pool, base, """
        set -e
        echo a > /tmp/a; echo b > /dev/shm/b; echo c > /work/c
        mkdir -p /tmp/d/e /dev/shm/f; touch /tmp/d/e/g; chmod 000 /tmp/d
        mkfifo /tmp/fifo; ln -s /etc/passwd /dev/shm/link
        ls -A /tmp /dev/shm /work | tr '\\n' ' '""")
    assert report.reason == Reason.OK, err
    assert "a" in out and "b" in out and "c" in out
    out, err, report = step(pool, base, "ls -A /tmp /dev/shm /work | grep -v ':$' | grep -c .; "
                                        "df -k /tmp /dev/shm | tail -2")
    assert report.reason == Reason.OK, err
    count, *usage = out.splitlines()
    assert count == "0", out
    assert [line.split()[2] for line in usage] == ["0", "0"], usage  # fresh, empty tmpfs
    assert box_pid(pool) == first


def test_background_processes_do_not_survive(pool: WarmSandbox, base: str) -> None:
    first = box_pid(pool)
    _, err, report = step(pool, base, """
        sleep 1000 &
        (setsid sleep 1001 &)
        nohup sleep 1002 >/dev/null 2>&1 & disown
        (trap '' TERM HUP INT; exec -a hidden sleep 1003) &
        echo started""")
    assert report.reason == Reason.OK, err
    out, err, report = step(pool, base, "ps -eo pid=,comm=,args=")
    assert report.reason == Reason.OK, err
    pids = {int(line.split()[0]) for line in out.splitlines()}
    assert "sleep" not in out and "hidden" not in out, out
    assert 1 in pids and len(pids) <= 3, out  # the init, bash, ps
    assert box_pid(pool) == first


@pytest.mark.cgroup
def test_cgroup_limits_and_counters_do_not_carry_over(pool: WarmSandbox, base: str) -> None:
    first = box_pid(pool)
    # A spins for more CPU than B costs on its own (B's cost grows with the machine's pace).
    spin = 0.5 * pace()
    hog = ("python3 -c 'import time\nt = time.process_time()\n"
           f"while time.process_time() - t < {spin}: pass'")
    _, err, tight = step(pool, base, f"{hog}; python3 -c 'x = bytearray(24 << 20)'",
                         memory=32 * MIB, pids=8, wall_time=20 * pace())
    assert tight.reason == Reason.OK, err
    assert tight.time >= spin and tight.memory >= 24 * MIB
    # B: more memory and processes than A was allowed; its counters start from zero.
    script = "python3 -c 'x = bytearray(100 << 20)'; for i in $(seq 20); do sleep 0.2 & done; wait"
    _, err, roomy = step(pool, base, script, memory=256 * MIB, pids=64)
    assert roomy.reason == Reason.OK, err
    assert roomy.time < spin, roomy  # A's CPU is not B's
    assert roomy.memory >= 100 * MIB
    # C: A's tight limits again, as C's own
    _, _, again = step(pool, base, "python3 -c 'x = bytearray(100 << 20)'", memory=32 * MIB)
    assert again.reason == Reason.MEMORY_LIMIT, again
    assert box_pid(pool) == first


@pytest.mark.cgroup
def test_no_limit_after_a_limited_step_and_no_peak_carried_over(pool: WarmSandbox,
                                                                 base: str) -> None:
    """The prepared cgroup holds the last step's limits as a guess: a step without limits
    must not inherit them, and a step's peak memory is its own."""
    first = box_pid(pool)
    _, err, tight = step(pool, base, "python3 -c 'x = bytearray(24 << 20)'", memory=32 * MIB,
                         pids=8)
    assert tight.reason == Reason.OK and tight.memory >= 24 * MIB, (tight, err)
    script = "python3 -c 'x = bytearray(100 << 20)'; for i in $(seq 20); do sleep 0.2 & done; wait"
    _, err, free = step(pool, base, script)  # no memory or pids limit at all
    assert free.reason == Reason.OK, (free, err)
    assert free.memory >= 100 * MIB
    _, err, small = step(pool, base, "true", memory=32 * MIB, pids=8)
    assert small.reason == Reason.OK, (small, err)
    assert small.memory < 24 * MIB, small  # not the 100 MiB of the step before
    assert box_pid(pool) == first


def test_environment_and_rlimits_do_not_carry_over(pool: WarmSandbox, base: str) -> None:
    first = box_pid(pool)
    out, err, report = step(pool, base, "env; ulimit -n; ulimit -s",
                            env={"SECRET_OF_A": "s3cret"}, open_files=32, stack=8 * MIB)
    assert report.reason == Reason.OK, err
    assert "SECRET_OF_A=s3cret" in out and "32\n8192\n" in out
    out, err, report = step(pool, base, "env; ulimit -n; ulimit -s")
    assert report.reason == Reason.OK, err
    assert "SECRET_OF_A" not in out
    names = {line.split("=", 1)[0] for line in out.splitlines() if "=" in line}
    assert names == {"PATH", "HOME", "TMPDIR", "LANG", "PWD", "SHLVL", "_"}, names
    assert out.endswith("256\n65536\n"), out  # the defaults of Limits, not A's
    assert box_pid(pool) == first


def test_signals_and_session_are_the_steps_own(pool: WarmSandbox, base: str) -> None:
    """The stem's shell is started by the init, a Python that ignores SIGPIPE and SIGXFSZ: a
    step's programs still start with no signal ignored or blocked (as in a cold step), the
    step leads a session of its own, and a step that ignored signals leaves the next one
    nothing."""
    first = box_pid(pool)
    # grep's own status: bash, the step's top process, ignores SIGQUIT for itself alone
    status = "grep -E '^Sig(Blk|Ign)' /proc/self/status; ps -o sid= -o pid= -p $$"
    out, err, report = step(pool, base, f"trap '' PIPE XFSZ INT TERM HUP USR1; {status}")
    assert report.reason == Reason.OK, err
    assert "SigIgn:\t0000000000000000" not in out, out  # what the next step must not inherit
    out, err, report = step(pool, base, status)
    assert report.reason == Reason.OK, err
    lines = out.splitlines()
    assert lines[:2] == ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"], out
    sid, pid = lines[2].split()
    assert sid == pid, out  # the step's top process leads its own session
    assert box_pid(pool) == first


def test_the_init_cannot_be_signalled_or_read(pool: WarmSandbox, base: str) -> None:
    first = box_pid(pool)
    out, err, report = step(pool, base, """
        for sig in KILL STOP TERM INT HUP SEGV USR1; do kill -$sig 1; done
        kill -9 -1
        cat /proc/1/environ && echo READ_ENVIRON
        head -c 16 /proc/1/mem && echo READ_MEM
        ls /proc/1/fd && echo LISTED_FDS
        echo done""")
    assert "done" in out, (out, err)
    assert "READ_" not in out and "LISTED_FDS" not in out, out
    out, err, report = step(pool, base, "echo still here")
    assert (out, report.reason) == ("still here\n", Reason.OK), err
    assert box_pid(pool) == first  # the same box served both: its init survived


def test_ipc_objects_retire_the_box(pool: WarmSandbox, base: str) -> None:
    first = box_pid(pool)
    mq = ("python3 -c \"import ctypes; rt = ctypes.CDLL('librt.so.1'); "
          "assert rt.mq_open(b'/khala-mq', 0o102, 0o600, None) >= 0\"")
    _, err, report = step(pool, base, f"ipcmk -M 4096 && ipcmk -Q && ipcmk -S 1 && {mq}")
    assert report.reason == Reason.OK, err
    out, err, report = step(pool, base, "ipcs -m -q -s | grep -c '^0x'; ls -A /dev/mqueue | wc -l")
    assert report.reason == Reason.OK, err
    assert out.split() == ["0", "0"], out
    assert box_pid(pool) != first  # that box was not reused: a fresh one replaced it


@pytest.mark.cgroup
def test_a_box_killed_from_outside_is_replaced(pool: WarmSandbox, base: str) -> None:
    victim = box_pid(pool)
    cgroups = pool.owned()[2]  # the box's and its stem's: empty once the whole box is dead
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(c, "cgroup.procs").read_text().strip() for c in cgroups):
        assert time.monotonic() < deadline, "the killed box did not die"
        time.sleep(0.01)
    for _ in range(3):  # cold or in a new box, the steps still run
        out, err, report = step(pool, base, "echo ok")
        assert (out, report.reason) == ("ok\n", Reason.OK), err
    box_pid(pool)


@pytest.mark.cgroup
def test_nothing_is_left_on_the_host(pool: WarmSandbox, base: str) -> None:
    probe = LeakProbe(pool, base, exclude_children=set())
    step(pool, base, "sleep 100 & echo x > /tmp/x; ipcmk -M 4096")
    assert probe.leaks() == []
    assert Path(base).is_dir() and os.listdir(base) == []


def test_two_slots_back_to_back_on_a_pool_of_four(base: str) -> None:
    """The executor's shape (two slots, two boxes each, a worker per two boxes): steps from two
    threads back to back all run in warm boxes, each on its own, and nothing is left behind."""
    pool = check_bwrap(WarmSandbox(4))
    assert isinstance(pool, WarmSandbox)
    try:
        assert pool.settle(60), "the warm pool did not settle"
        probe = LeakProbe(pool, base, exclude_children=set())
        boxes = pool.owned()[0]
        assert len(boxes) == 4
        failures: list[str] = []

        def slot(name: str) -> None:
            for n in range(15):
                out, err, report = step(pool, base, f"echo {name}{n} > /tmp/mine; cat /tmp/mine; "
                                                    "ls -A /work | wc -l")
                if (out, report.reason) != (f"{name}{n}\n0\n", Reason.OK):
                    failures.append(f"{name}{n}: {out!r} {report} {err}")

        threads = [threading.Thread(target=slot, args=(name,)) for name in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert failures == []
        assert pool.settle(60), "the warm pool did not settle"
        assert pool.owned()[0] == boxes  # no box was retired (none found residue)
        assert probe.leaks() == []
    finally:
        pool.close()
