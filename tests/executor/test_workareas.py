"""Work areas made ahead (khala/executor/workareas.py) on the plain sandbox: a task takes one
made before it came, a used one is removed and replaced off the task's path, another size is
made on the spot, and close removes everything."""

from __future__ import annotations

import os
import time
from pathlib import Path

from khala.config import ExecutorSettings
from khala.executor.workareas import WorkAreas
from khala.sandbox.plain import PlainSandbox


def wait_until(check: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_work_areas_are_made_ahead_used_once_and_removed(tmp_path: Path) -> None:
    settings = ExecutorSettings(work_dir=str(tmp_path))
    areas = WorkAreas(PlainSandbox(), settings, ahead=2)
    try:
        assert wait_until(lambda: areas.ready() == 2)
        before = set(os.listdir(tmp_path))
        workdir = areas.take("t1", settings.disk_limit)
        assert os.path.basename(workdir) in before and os.listdir(workdir) == []
        assert areas.ready() == 1
        Path(workdir, "left.txt").write_text("a run's file")

        areas.give_back(workdir)
        assert wait_until(lambda: not os.path.exists(workdir) and areas.ready() == 2)
        fresh = {areas.take(f"t{n}", settings.disk_limit) for n in range(2)}
        assert workdir not in fresh  # never reused
        assert all(os.listdir(d) == [] for d in fresh)

        other = areas.take("big", settings.disk_limit * 2)  # another size: made on the spot
        assert other not in fresh and os.path.isdir(other)
        for used in (*fresh, other):
            areas.give_back(used)
    finally:
        areas.close()
    assert os.listdir(tmp_path) == []
