"""Two steps connected by pipes (`RunSpec.connect` and `RunSpec.stdio`), the plumbing of an
interactive case (khala/executor/interact.py), run directly on the real sandboxes: cold bwrap,
warm bwrap (the connecting side in a warm box) and plain."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator

import pytest

from khala.model import Reason
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox
from khala.sandbox.plain import PlainSandbox
from khala.sandbox.warm import WarmSandbox

# The jury side: reads a number, answers it plus one, reads the echo, says it on stderr.
JURY = 'read x; echo $((x + 1)); read y; echo "jury got $y" >&2; exit 5'
# The program side: asks 41, echoes the answer back, says it on stderr.
PROGRAM = 'echo 41; read z; echo "$z"; echo "program got $z" >&2'


@pytest.fixture(params=["bwrap", "plain"])
def any_sandbox(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[Sandbox]:
    """The bwrap sandboxes of conftest (cold and warm), and the plain one."""
    if request.param == "plain":
        plain = PlainSandbox()
        yield plain
        plain.close()
    else:
        yield sandbox


def _workdir(sandbox: Sandbox, root: str, name: str) -> str:
    path = os.path.join(root, name)
    os.mkdir(path)
    sandbox.prepare_workdir(path)
    return path


def pair(sandbox: Sandbox, jury: str, program: str, wall: float = 20.0,
         jury_wall: float = 30.0) -> tuple[RunOutcome, RunOutcome]:
    """Run `jury` (connecting) and `program` (given the jury's pipe ends) together."""
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        os.chmod(root, 0o711)
        pipes: list[int] = []
        connected = threading.Event()

        def connect(write_fd: int, read_fd: int) -> None:
            pipes.extend((write_fd, read_fd))
            connected.set()

        jury_spec = RunSpec(argv=["bash", "-c", jury], workdir=_workdir(sandbox, root, "jury"),
                            limits=Limits(wall_time=jury_wall), connect=connect)
        outcomes: dict[str, RunOutcome] = {}
        thread = threading.Thread(
            target=lambda: outcomes.update(jury=sandbox.run(jury_spec, threading.Event())))
        thread.start()
        assert connected.wait(30), "the connecting side never connected"
        write_fd, read_fd = pipes
        program_spec = RunSpec(argv=["bash", "-c", program],
                               workdir=_workdir(sandbox, root, "program"),
                               limits=Limits(wall_time=wall), stdio=(read_fd, write_fd))
        outcomes["program"] = sandbox.run(program_spec, threading.Event())
        thread.join(60)
        assert not thread.is_alive()
        return outcomes["jury"], outcomes["program"]


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


def test_the_connecting_side_runs_in_a_warm_box(sandbox: Sandbox) -> None:
    """On the warm pool the jury's step is a warm box's stem (pid 1 of its namespace is the
    box's Python init; a cold bwrap has none), its pipes the stem's own."""
    if not isinstance(sandbox, WarmSandbox):
        pytest.skip("the warm pool's case")
    assert sandbox.settle(30)
    jury, program = pair(sandbox, "tr '\\0' ' ' < /proc/1/cmdline >&2; " + JURY, PROGRAM)
    assert b"python" in jury.stderr and b"jury got 42" in jury.stderr, jury
    assert program.report.reason == Reason.OK
