"""The leader-only pass loop shared by the reaper and the job scheduler."""

from __future__ import annotations

import threading
import time

from khala.judicator.leader_loop import LeaderLoop


def test_passes_run_only_while_leading_and_survive_failures() -> None:
    leading = threading.Event()
    passes: list[int] = []
    done = threading.Event()

    def work() -> None:
        passes.append(1)
        if len(passes) == 1:
            raise RuntimeError("a failing pass is logged, the loop goes on")
        if len(passes) >= 3:
            done.set()

    loop = LeaderLoop("test", 0.01, leading.is_set, work)
    loop.start()
    try:
        assert not done.wait(0.2) and passes == []  # not the leader: no pass at all
        leading.set()
        assert done.wait(5), passes
    finally:
        loop.stop()
    assert loop.stopping()
    count = len(passes)
    time.sleep(0.05)
    assert len(passes) == count  # stopped: no more passes
