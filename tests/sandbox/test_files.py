"""Hostile file trees through the executor's real code (`run_task`): trees deeper than Python's
recursion limit and PATH_MAX, zips that are slow to unpack, files that collide with Khala's own
names. Run on the plain backend (no work-area tmpfs, so the iterative walks do the cleanup) and
on the bwrap sandbox."""

from __future__ import annotations

import io
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from khala.config import ExecutorSettings
from khala.executor.runner import run_task
from khala.model import Compile, Execute, Status, Task
from khala.sandbox.base import MIB, Sandbox
from khala.sandbox.bwrap import BwrapSandbox
from khala.sandbox.fstree import chown_tree, remove_tree
from khala.sandbox.plain import PlainSandbox
from khala.zipcheck import ExtractLimit, extract_zip

pytestmark = pytest.mark.integration  # real runs and 3,000-deep trees on the real filesystem

DEEP_PROGRAM = (
    "python3 -c \"import os\nfor _ in range({depth}): os.mkdir('d'); os.chdir('d')\n"
    "open('leaf', 'w').write('x')\nprint('made')\""
)


@pytest.fixture()
def work_base() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="khala-files-") as root:
        os.chmod(root, 0o711)
        yield root


def settings(work_base: str, **extra: object) -> ExecutorSettings:
    return ExecutorSettings(work_dir=work_base, memory_limit=256 * MIB, pids_limit=64,
                            output_limit=1 * MIB, result_limit=64 * 1024, **extra)  # type: ignore[arg-type]


def zip_of(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    return buf.getvalue()


def make_deep(root: str, depth: int) -> None:
    """A chain of `depth` directories under `root`, made by fd (deeper than PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d" * 20, dir_fd=fd)
        child = os.open("d" * 20, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)


def test_remove_and_chown_trees_deeper_than_recursion_and_path_max(work_base: str) -> None:
    top = os.path.join(work_base, "tree")
    os.mkdir(top)
    make_deep(top, 3000)  # 63,000 characters of path; 3,000 > the recursion limit
    os.symlink("/etc", os.path.join(top, "link"))
    chown_tree(top, 65534, 65534)
    assert os.lstat(os.path.join(top, "d" * 20)).st_uid == 65534
    assert os.lstat(os.path.join(top, "link")).st_uid == 65534
    assert os.stat("/etc").st_uid == 0  # the link was not followed
    remove_tree(top)
    assert os.listdir(work_base) == []
    remove_tree(top)  # gone already: fine


def deep_tree_program_runs(box: Sandbox, work_base: str) -> None:
    task = Task(id="deep", execute=Execute(command=DEEP_PROGRAM.format(depth=1500), timeout=60))
    status, result = run_task(task, box, settings(work_base), threading.Event())
    assert (status, result.execute_output) == (Status.SUCCESS, b"made\n"), result
    assert os.listdir(work_base) == []


def test_a_program_making_a_deep_tree_does_not_kill_the_slot_plain(work_base: str) -> None:
    deep_tree_program_runs(PlainSandbox(), work_base)


def test_a_program_making_a_deep_tree_does_not_kill_the_slot(
        sandbox: BwrapSandbox, work_base: str) -> None:
    deep_tree_program_runs(sandbox, work_base)


def test_a_zip_entry_1100_directories_deep(sandbox: BwrapSandbox, work_base: str) -> None:
    name = "a/" * 1100 + "leaf.txt"
    task = Task(id="deepzip", compile=Compile(source=zip_of({name: "deep"})),
                execute=Execute(command=f"cat {name}"))
    status, result = run_task(task, sandbox, settings(work_base), threading.Event())
    assert (status, result.execute_output) == (Status.SUCCESS, b"deep"), result
    assert os.listdir(work_base) == []


def test_run_task_never_raises(work_base: str) -> None:
    class Broken(PlainSandbox):
        def prepare_workdir(self, workdir: str,
                            identity: tuple[int, int] | None = None) -> None:
            raise RecursionError(f"maximum recursion depth exceeded at {workdir}")

    task = Task(id="broken", execute=Execute(command="echo hi"))
    status, result = run_task(task, Broken(), settings(work_base), threading.Event())
    assert status == Status.UNKNOWN_ERROR
    assert b"internal error" in result.compile_error
    assert work_base.encode() not in result.compile_error
    assert os.listdir(work_base) == []


def deep_zip(entries: int, depth: int) -> bytes:
    return zip_of({"/".join(["d"] * depth + [f"f{i}"]): "x" for i in range(entries)})


def test_extraction_is_linear_in_depth(work_base: str) -> None:
    """2,000 entries 1,000 directories deep unpack about as fast as 2,000 flat ones (reopening
    every ancestor per entry made this 2,000,000 opens)."""
    timings = []
    for depth in (1, 1000):
        data = deep_zip(2000, depth)
        dest = tempfile.mkdtemp(dir=work_base)
        started = time.process_time()
        extract_zip(data, dest, 10 * MIB, 5000)
        timings.append(time.process_time() - started)
        remove_tree(dest)
    assert timings[1] < 10 * timings[0] + 0.5, timings


def test_extraction_is_bounded_in_time(work_base: str) -> None:
    with pytest.raises(ExtractLimit, match="too long"):
        extract_zip(deep_zip(3000, 50), work_base, 10 * MIB, 5000, seconds=0.05)


def test_slow_unpacking_is_a_compile_failure(sandbox: BwrapSandbox, work_base: str) -> None:
    task = Task(id="slowzip", compile=Compile(source=deep_zip(3000, 50)),
                execute=Execute(command="true"))
    status, result = run_task(task, sandbox, settings(work_base, unpack_timeout=0.05),
                              threading.Event())
    assert status == Status.COMPILE_FAILED
    assert b"takes too long to unpack" in result.compile_error
    assert os.listdir(work_base) == []


@pytest.mark.parametrize("name", ["data", "data/x.txt", "compile.sh", "execute.sh",
                                  "execute.in", "execute.in/x"])
def test_source_names_khala_writes_itself_are_user_errors(
        name: str, sandbox: BwrapSandbox, work_base: str) -> None:
    task = Task(id="clash", compile=Compile(source=zip_of({name: "x"}), command="true"),
                execute=Execute(command="true"))
    status, result = run_task(task, sandbox, settings(work_base), threading.Event())
    assert status == Status.COMPILE_FAILED, result
    top = name.split("/")[0]
    assert f"[khala] task files: the source zip holds {top}".encode() in result.compile_error
    assert work_base.encode() not in result.compile_error and b"/tmp" not in result.compile_error
    assert os.listdir(work_base) == []


def test_data_larger_than_the_work_area_is_a_user_error(
        sandbox: BwrapSandbox, work_base: str) -> None:
    data = zip_of({"big.bin": "x" * (3 * MIB)})
    task = Task(id="bigdata", execute=Execute(data=data, command="true"))
    status, result = run_task(task, sandbox, settings(work_base, disk_limit=2 * MIB),
                              threading.Event())
    assert status == Status.COMPILE_FAILED, result
    assert b"does not fit in the work area" in result.compile_error
    assert os.listdir(work_base) == []


def test_work_area_is_bounded(sandbox: BwrapSandbox, work_base: str) -> None:
    """fallocate gigabytes in the work dir: the step gets ENOSPC at the disk limit, the host's
    work root stays empty."""
    command = ("fallocate -l 4G huge; for i in $(seq 100); do fallocate -l 1M f$i || break; "
               "done; echo files $(ls | grep -c '^f'); df -k . | tail -1")
    task = Task(id="diskfill", execute=Execute(command=command, timeout=20))
    status, result = run_task(task, sandbox, settings(work_base, disk_limit=8 * MIB),
                              threading.Event())
    assert status == Status.SUCCESS, result
    assert b"No space left on device" in result.execute_error
    files = int(result.execute_output.split()[1])
    assert 4 <= files <= 8, result.execute_output
    assert os.listdir(work_base) == []
    assert Path(work_base).stat().st_size < MIB


def test_a_running_tasks_files_are_private(sandbox: BwrapSandbox, work_base: str) -> None:
    """Other local users cannot read a running task's files: its work area (a tmpfs) is 0700 and
    the sandbox user's own, and what its steps create is 0600 (umask 077), while the sandbox user
    itself still reads and writes there, from step to step."""
    task = Task(id="private", compile=Compile(command="umask; echo made > built"),
                execute=Execute(command="stat -c '%a %u' /work built; cat built; "
                                        "mkdir d; stat -c %a d"))
    status, result = run_task(task, sandbox, settings(work_base), threading.Event())
    assert status == Status.SUCCESS, result
    assert result.compile_output == b"0077\n"  # type: ignore[attr-defined]
    assert result.execute_output == b"700 65534\n600 65534\nmade\n700\n"  # type: ignore[attr-defined]


def test_a_prepared_work_dir_is_the_sandbox_users_alone(sandbox: BwrapSandbox,
                                                        work_base: str) -> None:
    workdir = os.path.join(work_base, "w")
    os.mkdir(workdir, 0o755)
    sandbox.prepare_workdir(workdir)
    st = os.stat(workdir)
    assert (st.st_mode & 0o777, st.st_uid) == (0o700, 65534)
