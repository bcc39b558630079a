"""Executor life cycle with real processes: crash mid-task, graceful drain, forced stop."""

from __future__ import annotations

import signal
import time
import zlib
from collections.abc import Callable
from typing import Any

from khala.rpc import judicator_thrift as T


def z(text: str) -> bytes:
    return zlib.compress(text.encode()) if text else b""


def add(rpc: Any, execute: str, timeout: int = 30) -> str:
    answer = rpc.add(
        T.Task(
            user=1,
            compile=T.Compile(source=b"", command=z("true"), timeout=timeout),
            execute=T.Execute(
                input=b"", data=b"", command=z(execute), timeout=timeout, standard=b""
            ),
        )
    )
    assert answer.result == 0
    return str(answer.id)


def wait_for(rpc: Any, task_id: str, check: Callable[[Any], bool], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task = rpc.get(task_id).task
        if check(task):
            return task
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} never matched; last: {rpc.get(task_id).task}")


def test_sigkill_executor_mid_task_retries_on_another(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator(expiry=2, reap_interval=0.2)
    first = c.start_executor(slots=1, name="exec-first")
    rpc = c.rpc()
    task_id = add(rpc, "sleep 1; echo finished")
    wait_for(rpc, task_id, lambda t: t.status == 3 and t.executor == "exec-first", 20)
    killed_at = time.monotonic()
    first.kill()  # SIGKILL: no goodbye report
    retrying = wait_for(rpc, task_id, lambda t: t.status == 6, 15)
    requeue_seconds = time.monotonic() - killed_at
    assert retrying.executor is None and not retrying.done
    c.start_executor(slots=1, name="exec-second")
    done = wait_for(rpc, task_id, lambda t: t.done, 30)
    print(f"executor SIGKILL → Retrying in {requeue_seconds:.2f}s → Success on exec-second")
    assert (done.status, done.executor) == (5, "exec-second")
    assert zlib.decompress(done.result.execute_output) == b"finished\n"
    assert requeue_seconds < 2 + 2  # expiry + reaper slack
    # Recorded once: a late report from the dead executor's name changes nothing.
    late = T.Task(id=task_id, status=4, result=T.Result(execute_output=z("late")))
    assert [b.id for b in rpc.report("exec-first", [late], [], 0).cancel] == [task_id]
    final = rpc.get(task_id).task
    assert (final.status, zlib.decompress(final.result.execute_output)) == (5, b"finished\n")


def test_sigterm_drains_running_tasks_then_exits(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator()
    executor = c.start_executor(slots=2)
    rpc = c.rpc()
    running = add(rpc, "sleep 1.5; echo drained")
    wait_for(rpc, running, lambda t: t.status == 3, 20)
    executor.signal(signal.SIGTERM)
    time.sleep(0.3)
    queued = add(rpc, "true")  # must not be taken by a draining executor
    code = executor.wait(20)
    assert code == 0, executor.log()
    done = rpc.get(running).task
    assert (done.status, zlib.decompress(done.result.execute_output)) == (5, b"drained\n")
    assert rpc.get(queued).task.status == 0


def test_second_sigterm_forces_and_hands_tasks_back(cluster_factory: Any) -> None:
    c = cluster_factory()
    c.start_judicator(expiry=30)  # the reaper must not be what requeues it
    executor = c.start_executor(slots=1)
    rpc = c.rpc()
    task_id = add(rpc, "sleep 60")
    wait_for(rpc, task_id, lambda t: t.status == 3, 20)
    executor.signal(signal.SIGTERM)
    time.sleep(0.2)
    executor.signal(signal.SIGTERM)
    assert executor.wait(15) == 0, executor.log()
    back = wait_for(rpc, task_id, lambda t: t.status == 6, 5)
    assert back.executor is None and not back.done
