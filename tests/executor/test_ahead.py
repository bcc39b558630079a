"""Tasks held ahead of busy slots (the executor's `ahead` setting), with real processes: a
judicator on SQLite and executors with one slot each, driven over Thrift.

A task held ahead is assigned to the executor (Compiling) while its only slot runs another
task; it must run there exactly once, and never when it is cancelled, the executor is killed
(the reaper requeues it) or drains (it goes back at once)."""

from __future__ import annotations

import re
import signal
import time
import zlib
from typing import Any

from tests.executor.test_node import add, wait_for


def finished(node: Any, task_id: str) -> int:
    """How many times `task_id` ran to its end on the executor `node` (its log)."""
    return len(re.findall(rf"task {task_id} finished with status \d+", node.log()))


def held_ahead(rpc: Any, running: str, queued: str, executor: str) -> None:
    """Wait until `queued` is assigned to `executor` (Compiling) while `running` runs there."""
    wait_for(rpc, running, lambda t: t.status == 3 and t.executor == executor, 20)
    wait_for(rpc, queued, lambda t: t.status == 1 and t.executor == executor, 10)
    first = rpc.get(running).task
    assert (first.status, first.done) == (3, False), "the first task ended before the check"


def test_a_task_held_ahead_runs_once_after_the_one_before(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator(expiry=30)  # nothing here may be requeued by the reaper
    executor = c.start_executor(slots=1, name="exec-ahead", ahead=1)
    rpc = c.rpc()
    tasks = [add(rpc, "sleep 2; echo 0")] + [add(rpc, f"sleep 0.5; echo {i}") for i in (1, 2)]
    held_ahead(rpc, tasks[0], tasks[1], "exec-ahead")
    assert rpc.get(tasks[2]).task.executor is None  # one ahead, not more
    for i, task_id in enumerate(tasks):
        done = wait_for(rpc, task_id, lambda t: t.done, 30)
        assert (done.status, done.executor) == (5, "exec-ahead")
        assert zlib.decompress(done.result.execute_output) == f"{i}\n".encode()
        assert finished(executor, task_id) == 1, executor.log()
    assert "back to the queue" not in c.logs()  # no task was lost or requeued on the way


def test_sigkill_with_a_task_held_ahead_requeues_it_for_another(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator(expiry=2, reap_interval=0.2)
    first = c.start_executor(slots=1, name="exec-first", ahead=1)
    rpc = c.rpc()
    running, queued = add(rpc, "sleep 3; echo long"), add(rpc, "echo queued")
    held_ahead(rpc, running, queued, "exec-first")
    first.kill()  # SIGKILL: no goodbye, no hand-back
    for task_id in (running, queued):
        back = wait_for(rpc, task_id, lambda t: t.status == 6, 15)
        assert back.executor is None and not back.done
    second = c.start_executor(slots=2, name="exec-second", ahead=1)
    for task_id, output in ((running, b"long\n"), (queued, b"queued\n")):
        done = wait_for(rpc, task_id, lambda t: t.done, 30)
        assert (done.status, done.executor) == (5, "exec-second")
        assert zlib.decompress(done.result.execute_output) == output
        assert finished(second, task_id) == 1, second.log()
    assert finished(first, queued) == 0, first.log()


def test_a_cancelled_task_held_ahead_never_runs(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator(expiry=30)
    executor = c.start_executor(slots=1, name="exec-cancel", ahead=1)
    rpc = c.rpc()
    running, queued = add(rpc, "sleep 3; echo long"), add(rpc, "echo queued")
    held_ahead(rpc, running, queued, "exec-cancel")
    assert rpc.cancel(queued) == 0
    done = wait_for(rpc, running, lambda t: t.done, 30)
    assert (done.status, zlib.decompress(done.result.execute_output)) == (5, b"long\n")
    assert rpc.get(queued).task.status == 7
    log = executor.log()
    assert f"task {queued} taken back before it ran" in log, log  # dropped from the queue
    assert finished(executor, queued) == 0, log


def test_a_drain_hands_the_task_held_ahead_back_at_once(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator(expiry=30)  # the hand-back, not the reaper, must requeue it
    first = c.start_executor(slots=1, name="exec-drain", ahead=1, stop_grace=30)
    rpc = c.rpc()
    running, queued = add(rpc, "sleep 3; echo drained"), add(rpc, "echo queued")
    held_ahead(rpc, running, queued, "exec-drain")
    first.signal(signal.SIGTERM)
    signalled = time.monotonic()
    back = wait_for(rpc, queued, lambda t: t.status == 6, 10)
    handed_back = time.monotonic() - signalled
    assert back.executor is None and not back.done
    assert not rpc.get(running).task.done  # back while the running task still runs
    second = c.start_executor(slots=1, name="exec-next", ahead=1)
    done = wait_for(rpc, queued, lambda t: t.done, 30)
    assert (done.status, done.executor) == (5, "exec-next")
    assert zlib.decompress(done.result.execute_output) == b"queued\n"
    assert first.wait(30) == 0, first.log()  # it drained: the running task finished first
    drained = rpc.get(running).task
    assert (drained.status, drained.executor) == (5, "exec-drain")
    assert zlib.decompress(drained.result.execute_output) == b"drained\n"
    assert finished(first, queued) == 0 and finished(second, queued) == 1
    print(f"\nSIGTERM → the task held ahead back in the queue after {handed_back:.2f}s")
