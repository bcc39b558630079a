"""Two steps joined by the named pipes of an interactive case (khala/executor/channels.py), the
plumbing of khala/executor/interact.py, run directly on the real sandboxes: cold bwrap, warm
bwrap (both sides in warm boxes) and plain."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

from khala.executor import channels
from khala.model import Reason
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox
from khala.sandbox.plain import PlainSandbox
from khala.sandbox.warm import WarmSandbox

# The jury side: reads a number, answers it plus one, reads the echo, says it on stderr.
JURY = 'read x; echo $((x + 1)); read y; echo "jury got $y" >&2; exit 5'
# The program side: asks 41, echoes the answer back, says it on stderr.
PROGRAM = 'echo 41; read z; echo "$z"; echo "program got $z" >&2'

pytestmark = pytest.mark.integration  # real sandboxes and processes


@pytest.fixture(params=["bwrap", "plain"])
def any_sandbox(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[Sandbox]:
    """The bwrap sandboxes of conftest (cold and warm), and the plain one."""
    if request.param == "plain":
        plain = PlainSandbox()
        yield plain
        plain.close()
    else:
        yield sandbox


def _workdir(sandbox: Sandbox, root: str, name: str, script: str) -> str:
    path = os.path.join(root, name)
    os.mkdir(path)
    sandbox.open_workdir(path, 16 * 1024 * 1024)  # as the executor's: the binds go with it
    with open(os.path.join(path, "execute.sh" if name == "program" else "interact.sh"),
              "w") as fh:
        fh.write(script)
    sandbox.prepare_workdir(path)
    return path


def pair(sandbox: Sandbox, jury: str, program: str, wall: float = 20.0,
         jury_wall: float = 30.0) -> tuple[RunOutcome, RunOutcome]:
    """Run `jury` and `program` together, joined as an interactive case's two sides are."""
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        os.chmod(root, 0o711)
        program_dir = _workdir(sandbox, root, "program", channels.program_script(program))
        channels.make(program_dir)
        jury_dir = _workdir(sandbox, root, "jury", channels.jury_script(jury))
        channels.share(sandbox, program_dir, jury_dir)
        outcomes: dict[str, RunOutcome] = {}
        jury_spec = RunSpec(argv=["bash", "interact.sh"], workdir=jury_dir,
                            limits=Limits(wall_time=jury_wall))
        thread = threading.Thread(
            target=lambda: outcomes.update(jury=sandbox.run(jury_spec, threading.Event())))
        thread.start()
        outcomes["program"] = sandbox.run(
            RunSpec(argv=["bash", "execute.sh"], workdir=program_dir,
                    limits=Limits(wall_time=wall)), threading.Event())
        thread.join(60)
        assert not thread.is_alive()
        try:
            return outcomes["jury"], outcomes["program"]
        finally:
            for workdir in (jury_dir, program_dir):
                sandbox.close_workdir(workdir)


def _open_fds(sandbox: Sandbox) -> int:
    """How many fds this process holds once a warm pool has reset and prepared its boxes
    (each prepared stem's pipes: the same number, new fds)."""
    settle = getattr(sandbox, "settle", None)
    if settle is not None:
        assert settle(30)
    return len(os.listdir("/proc/self/fd"))


def test_two_steps_talk_through_pipes(any_sandbox: Sandbox, sandbox: Sandbox) -> None:
    before = _open_fds(sandbox)
    jury, program = pair(any_sandbox, JURY, PROGRAM)
    assert jury.report.exit_code == 5 and jury.report.reason == Reason.NONZERO_EXIT
    assert b"jury got 42" in jury.stderr
    assert program.report.reason == Reason.OK
    assert b"program got 42" in program.stderr
    assert jury.stdout == b"" and program.stdout == b""  # stdout went to the other side
    assert _open_fds(sandbox) <= before  # every pipe end closed


def test_one_side_ending_gives_the_other_end_of_file(any_sandbox: Sandbox) -> None:
    """The program exits at once: the jury's read sees the end of its input, not a hang."""
    jury, program = pair(any_sandbox, 'if read x; then exit 1; else exit 0; fi', 'exit 0')
    assert program.report.reason == Reason.OK
    assert jury.report.reason == Reason.OK  # read failed: end of file


def test_both_waiting_ends_at_the_wall_limit(any_sandbox: Sandbox) -> None:
    """Both sides read first: a deadlock, ended by the program's wall limit; the jury then
    reads the end of its input (its own wall limit is longer, as an interactor's is)."""
    jury, program = pair(any_sandbox, "read x; echo $? >&2", "read y", wall=1.0)
    assert program.report.reason == Reason.WALL_LIMIT
    assert jury.report.reason == Reason.OK and jury.stderr.strip() == b"1"  # read: EOF


def test_both_sides_run_in_warm_boxes(sandbox: Sandbox) -> None:
    """On the warm pool each side is a warm box's stem: pid 1 of its namespace is the box's
    Python init (a cold step's pid 1 is bubblewrap's relay shell, /bin/sh)."""
    if not isinstance(sandbox, WarmSandbox):
        pytest.skip("the warm pool's case")
    assert sandbox.settle(30)
    init = "tr '\\0' ' ' < /proc/1/cmdline >&2; "
    jury, program = pair(sandbox, init + JURY, init + PROGRAM)
    for side in (jury, program):
        assert b"python" in side.stderr and not side.stderr.startswith(b"/bin/sh"), side
    assert b"jury got 42" in jury.stderr and b"program got 42" in program.stderr
    assert program.report.reason == Reason.OK


@pytest.mark.parametrize("side", ["program", "jury"])
def test_release_unblocks_a_side_whose_partner_never_came(side: str) -> None:
    """A side waiting in `open` for a partner that never starts is let go by `release`: the
    program then writes into a pipe nobody reads and reads the end of its input; the jury
    reads the end of its input."""
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        program_dir, jury_dir = os.path.join(root, "program"), os.path.join(root, "jury")
        os.mkdir(program_dir)
        os.mkdir(jury_dir)
        channels.make(program_dir)
        channels.share(PlainSandbox(), program_dir, jury_dir)
        if side == "program":
            script = channels.program_script('read x; echo "read $? [$x]" >&2')
            name, where = "execute.sh", program_dir
        else:
            script = channels.jury_script('read x; echo "read $? [$x]" >&2')
            name, where = "interact.sh", jury_dir
        with open(os.path.join(where, name), "w") as fh:
            fh.write(script)
        proc = subprocess.Popen(["bash", name], cwd=where, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            channels.release(jury_dir)
            time.sleep(0.05)
        assert proc.poll() is not None, "release did not let the waiting side go"
        _, err = proc.communicate(timeout=10)
        assert err.strip().endswith(b"read 1 []"), err  # its read saw the end of its input


def test_release_leaves_a_name_that_is_not_a_fifo_unopened() -> None:
    """`release` opens the FIFOs by name without following links: a link put in their place
    is not opened (a write open of a host file through it would be the executor's, as root)."""
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        target = os.path.join(root, "target")
        os.mkfifo(target)
        os.symlink(target, os.path.join(root, channels.TO_JURY))
        reader = subprocess.Popen(["bash", "-c", f"exec 0<{target}; cat"],
                                  stdout=subprocess.PIPE)
        try:
            for _ in range(5):
                channels.release(root)
            time.sleep(0.2)
            assert reader.poll() is None  # still waiting for a writer: never opened by us
        finally:
            reader.kill()
            reader.wait(10)


def test_names_a_build_left_are_replaced_by_the_fifos() -> None:
    """A build may leave files or directories under the channels' names: they are Khala's."""
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        os.mkdir(os.path.join(root, channels.TO_JURY))
        with open(os.path.join(root, channels.TO_JURY, "inside"), "w") as fh:
            fh.write("x")
        os.symlink("/etc/passwd", os.path.join(root, channels.TO_PROGRAM))
        channels.make(root)
        for name in channels.NAMES:
            info = os.lstat(os.path.join(root, name))
            assert stat.S_ISFIFO(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o666
        assert os.path.exists("/etc/passwd")
