"""Run cgroup limits written only where they differ (a warm box writes its guess ahead), in
an order the kernel accepts, on fake cgroup directories (the real kernel: test_warm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from khala.errors import SandboxUnavailable
from khala.sandbox import cgroup_v2, cgroups
from khala.sandbox.cgroup_v2 import V2RunCgroup
from khala.sandbox.cgroups import V1RunCgroup

MIB = 1 << 20


def v1(tmp_path: Path, memsw: bool = True) -> tuple[V1RunCgroup, list[tuple[str, str]]]:
    dirs = {}
    for controller in cgroups.V1_CONTROLLERS:
        path = tmp_path / controller
        path.mkdir()
        dirs[controller] = str(path)
    if memsw:
        (tmp_path / "memory" / "memory.memsw.limit_in_bytes").write_text("")
    return V1RunCgroup(dirs), []


@pytest.fixture()
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    log: list[tuple[str, str]] = []
    real = cgroups.write_text

    def record(path: str, value: str) -> None:
        log.append((Path(path).name, value))
        real(path, value)

    monkeypatch.setattr(cgroups, "write_text", record)
    monkeypatch.setattr(cgroup_v2, "write_text", record)
    return log


def test_a_fresh_cgroup_gets_only_the_limits_asked(tmp_path: Path, writes: list) -> None:
    run, _ = v1(tmp_path)
    run.set_limits(None, 16)
    assert writes == [("pids.max", "16")]


def test_unchanged_limits_are_not_written_again(tmp_path: Path, writes: list) -> None:
    run, _ = v1(tmp_path)
    run.set_limits(64 * MIB, 16)
    writes.clear()
    run.set_limits(64 * MIB, 16)
    assert writes == []
    run.set_limits(64 * MIB, 32)
    assert writes == [("pids.max", "32")]


def test_v1_memory_and_swap_keep_memory_below_memsw(tmp_path: Path, writes: list) -> None:
    run, _ = v1(tmp_path)
    run.set_limits(64 * MIB, None)  # lowering from unlimited: memory first
    assert writes == [("memory.limit_in_bytes", str(64 * MIB)),
                      ("memory.memsw.limit_in_bytes", str(64 * MIB))]
    writes.clear()
    run.set_limits(128 * MIB, None)  # raising: memsw first
    assert writes == [("memory.memsw.limit_in_bytes", str(128 * MIB)),
                      ("memory.limit_in_bytes", str(128 * MIB))]
    writes.clear()
    run.set_limits(None, None)  # no limit again: both back to unlimited, memsw first
    assert writes == [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]


def test_a_failed_write_makes_every_file_be_written_next_time(tmp_path: Path,
                                                             writes: list) -> None:
    run, _ = v1(tmp_path)
    run.set_limits(64 * MIB, 16)
    (tmp_path / "pids").rename(tmp_path / "gone")
    with pytest.raises(SandboxUnavailable):
        run.set_limits(64 * MIB, 32)
    (tmp_path / "gone").rename(tmp_path / "pids")
    writes.clear()
    run.set_limits(64 * MIB, 32)
    assert {name for name, _ in writes} == {"memory.limit_in_bytes",
                                            "memory.memsw.limit_in_bytes", "pids.max"}


def test_v2_no_limit_is_max_and_swap_is_off_with_a_limit(tmp_path: Path, writes: list) -> None:
    for name in ("memory.swap.max", "memory.oom.group"):
        (tmp_path / name).write_text("")
    run = V2RunCgroup([str(tmp_path)])
    run.set_limits(64 * MIB, 8)
    assert writes == [("memory.max", str(64 * MIB)), ("memory.swap.max", "0"),
                      ("memory.oom.group", "1"), ("pids.max", "8")]
    writes.clear()
    run.set_limits(None, None)
    assert writes == [("memory.max", "max"), ("pids.max", "max")]
