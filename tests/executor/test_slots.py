"""Slots and their outbox with a fake task runner (no sandbox): pure bookkeeping and threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from khala.executor.slots import Slots
from khala.model import Result, Status, Task
from khala.sandbox.base import SignalBox

A, B = "a" * 24, "b" * 24


class FakeRunner:
    """Runs a task until released (or cancelled); `fail` makes it raise instead."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.fail: BaseException | None = None
        self.received: list[int] = []
        self.ran: list[tuple[str, int]] = []  # (task id, thread ident) of each run begun

    def __call__(
        self,
        task: Task,
        cancel: threading.Event,
        on_status: Callable[[int], None],
        signals: SignalBox,
    ) -> tuple[int, Result]:
        self.ran.append((task.id, threading.get_ident()))
        signals.attach(self.received.append)
        on_status(Status.RUNNING)
        self.started.release()
        if self.fail is not None:
            raise self.fail
        while not self.release.wait(0.01):
            if cancel.is_set():
                return Status.RUN_FAILED, Result(execute_error=b"cancelled")
        return Status.SUCCESS, Result(execute_output=f"ran {task.id}".encode())


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def pokes() -> list[int]:
    return []


@pytest.fixture
def slots(runner: FakeRunner, pokes: list[int]) -> Slots:
    return Slots("exec", 2, runner, on_change=lambda: pokes.append(1))


def test_a_finished_task_moves_to_the_outbox_until_handed_in(
    slots: Slots, runner: FakeRunner, pokes: list[int]
) -> None:
    assert slots.start(A, Task(id=A))
    assert runner.started.acquire(timeout=5)
    running = slots.snapshot()
    assert [(b.id, b.status) for b in running.executing] == [(A, Status.RUNNING)]
    assert (running.free, running.complete) == (1, [])
    runner.release.set()
    assert slots.join(5)
    done = slots.snapshot()
    assert (done.free, done.executing) == (2, [])
    assert [(t.id, t.status, t.executor, t.done) for t in done.complete] == [
        (A, Status.SUCCESS, "exec", True)
    ]
    assert done.complete[0].result and done.complete[0].result.execute_output == f"ran {A}".encode()
    assert slots.busy() and pokes  # the status change and the finish each asked for a report
    slots.outbox.handed_in(done.complete)
    assert not slots.busy() and slots.snapshot().complete == []


def test_handing_in_an_old_copy_keeps_a_newer_result(slots: Slots, runner: FakeRunner) -> None:
    runner.release.set()
    slots.start(A, Task(id=A))
    slots.join(5)
    first = slots.snapshot().complete
    slots.outbox.handed_in([Task(id=A)])  # another object with the same id: not what we hold
    assert slots.snapshot().complete == first


def test_the_same_task_is_not_started_twice(slots: Slots, runner: FakeRunner) -> None:
    assert slots.start(A, Task(id=A))
    assert not slots.start(A, Task(id=A))
    runner.release.set()
    slots.join(5)


def test_a_dropped_task_is_stopped_unreported_and_its_result_handed_in(
    slots: Slots, runner: FakeRunner
) -> None:
    slots.start(A, Task(id=A))
    slots.start(B, Task(id=B))
    assert runner.started.acquire(timeout=5) and runner.started.acquire(timeout=5)
    assert slots.drop([A, "c" * 24])
    assert [b.id for b in slots.snapshot().executing] == [B]
    assert not slots.drop([A])  # already dropped
    runner.release.set()
    assert slots.join(5)
    # the stopped run's result goes to the judicator as Cancelled (a cancelled task keeps its
    # output; for a task taken back for another reason the judicator drops it as late)
    complete = {t.id: t.status for t in slots.snapshot().complete}
    assert complete[A] == Status.CANCELLED and complete[B] != Status.CANCELLED
    # the same id is not run again while that result waits to be handed in
    assert not slots.start(A, Task(id=A))


def test_a_dropped_task_without_hand_in_discards_its_result(
    slots: Slots, runner: FakeRunner
) -> None:
    slots.start(A, Task(id=A))
    assert runner.started.acquire(timeout=5)
    assert slots.drop([A], hand_in=False)
    runner.release.set()
    assert slots.join(5)
    assert slots.snapshot().complete == []


def test_drop_all_kills_everything_and_closes(slots: Slots, runner: FakeRunner) -> None:
    slots.start(A, Task(id=A))
    slots.start(B, Task(id=B))
    assert sorted(slots.drop_all()) == [A, B]
    assert slots.join(5)  # cancelled runs end without a release
    assert slots.snapshot().complete == [] and not slots.busy()
    assert not slots.start("c" * 24, Task(id="c" * 24))


def test_closed_slots_take_no_new_task(slots: Slots) -> None:
    slots.close()
    assert not slots.start(A, Task(id=A)) and not slots.busy()


@pytest.mark.parametrize("error", [RuntimeError("boom"), RecursionError("deep"), SystemExit(3)])
def test_no_exception_kills_a_slot(slots: Slots, runner: FakeRunner, error: BaseException) -> None:
    runner.fail = error
    assert slots.start(A, Task(id=A))
    assert slots.join(5)
    (failed,) = slots.snapshot().complete
    assert failed.status == Status.UNKNOWN_ERROR and failed.result is not None
    assert type(error).__name__.encode() in failed.result.compile_error
    # The slot lives: the next task runs normally.
    runner.fail = None
    runner.release.set()
    assert slots.start(B, Task(id=B)) and slots.join(5)
    assert {t.id: t.status for t in slots.snapshot().complete}[B] == Status.SUCCESS


def test_an_undecodable_task_is_handed_in_as_failed(slots: Slots) -> None:
    assert slots.start(A, None, "bad zlib")
    assert slots.join(5)
    (failed,) = slots.snapshot().complete
    assert failed.status == Status.UNKNOWN_ERROR and failed.result is not None
    assert b"bad zlib" in failed.result.compile_error


def test_a_failing_notification_does_not_kill_the_slot(runner: FakeRunner) -> None:
    def explode() -> None:
        raise ValueError("no")

    slots = Slots("exec", 1, runner, on_change=explode)
    runner.release.set()
    assert slots.start(A, Task(id=A)) and slots.join(5)
    assert [t.status for t in slots.snapshot().complete] == [Status.SUCCESS]


def test_a_signal_reaches_the_running_task_only(slots: Slots, runner: FakeRunner) -> None:
    assert slots.start(A, Task(id=A))
    assert runner.started.acquire(timeout=5)
    assert slots.signal(A, 10)
    assert not slots.signal("f" * 24, 10)  # not running here
    runner.release.set()
    assert slots.join(5)
    assert runner.received == [10]
    assert not slots.signal(A, 15)  # finished: nothing to send to


def test_a_status_that_outlasts_the_progress_delay_asks_for_a_report(
    runner: FakeRunner,
) -> None:
    pokes: list[float] = []
    slots = Slots("exec", 2, runner, on_change=lambda: pokes.append(1), progress_delay=0.05)
    assert slots.start(A, Task(id=A))
    assert runner.started.acquire(timeout=5)
    assert slots.snapshot().executing[0].status == Status.RUNNING  # reported if asked
    for _ in range(500):  # the delayed poke comes once the status has held 0.05 s
        if pokes:
            break
        time.sleep(0.01)
    assert pokes == [1]
    runner.release.set()
    assert slots.join(5)
    assert len(pokes) == 2  # and the finish


def test_a_step_that_ends_within_the_progress_delay_is_reported_by_its_result_alone(
    runner: FakeRunner,
) -> None:
    pokes: list[float] = []
    slots = Slots("exec", 2, runner, on_change=lambda: pokes.append(1), progress_delay=0.5)
    runner.release.set()  # it ends as soon as it starts
    assert slots.start(A, Task(id=A))
    assert slots.join(5)
    assert pokes == [1]  # the finish
    time.sleep(0.7)  # past the delay: the Running poke never comes
    assert pokes == [1]


def test_a_result_is_handed_in_by_one_call_but_always_listed_by_reports(
    runner: FakeRunner,
) -> None:
    finished: list[int] = []
    slots = Slots("exec", 2, runner, on_change=lambda: None,
                  on_finish=lambda: finished.append(1))
    runner.release.set()
    assert slots.start(A, Task(id=A))
    assert slots.join(5)
    assert finished == [1]  # a finish asks for a hand-in, not a status report
    assert slots.outbox.claim_results(lambda _t: False) == ([], True)  # too large: left to a report
    claimed, left = slots.outbox.claim_results()
    assert [t.id for t in claimed] == [A] and not left
    assert slots.outbox.claim_results() == ([], False)  # one hand-in at a time carries it
    assert [t.id for t in slots.snapshot(claim=True).complete] == [A]  # a report lists it
    slots.outbox.unclaim(claimed)
    slots.outbox.unclaim(claimed)
    assert [t.id for t in slots.outbox.claim_results()[0]] == [A]  # a failed call: claimable again
    slots.outbox.handed_in(claimed)
    assert slots.snapshot().complete == [] and slots.outbox.claim_results() == ([], False)


# ---------------------------------------------------------------- tasks queued ahead of the slots

C = "c" * 24


def test_a_task_assigned_with_no_free_slot_waits_reported_as_held_then_runs_in_that_thread(
    runner: FakeRunner,
) -> None:
    slots = Slots("exec", 1, runner, on_change=lambda: None)
    assert slots.start(A, Task(id=A)) and runner.started.acquire(timeout=5)
    assert slots.start(B, Task(id=B))  # no free slot: queued, not refused
    assert not slots.start(B, Task(id=B))  # held already
    held = slots.snapshot()
    assert [(b.id, b.status) for b in held.executing] == [
        (A, Status.RUNNING), (B, Status.COMPILING)]  # B as the judicator set it
    assert (held.free, held.queued) == (0, 1)
    assert slots.running_ids() == {A, B} and slots.running() == 1
    assert [u[0] for u in slots.usage()] == [A]  # no step of B runs yet
    assert [r[0] for r in runner.ran] == [A]
    assert slots.signal(B, 10)  # held: it waits for B's first step
    runner.release.set()
    for _ in range(500):  # B starts without any call: the thread that finished A runs it
        if len(slots.snapshot().complete) == 2:
            break
        time.sleep(0.01)
    assert slots.join(5)
    assert [r[0] for r in runner.ran] == [A, B]
    assert runner.ran[0][1] == runner.ran[1][1]
    assert runner.received == [10]  # B's, delivered when its step began
    done = slots.snapshot()
    assert ({t.id: t.status for t in done.complete}, done.free, done.queued) == (
        {A: Status.SUCCESS, B: Status.SUCCESS}, 1, 0)


def test_a_dropped_queued_task_never_runs(runner: FakeRunner) -> None:
    slots = Slots("exec", 1, runner, on_change=lambda: None)
    slots.start(A, Task(id=A))
    assert runner.started.acquire(timeout=5)
    slots.start(B, Task(id=B))
    slots.start(C, Task(id=C))
    assert slots.drop([B])
    assert [b.id for b in slots.snapshot().executing] == [A, C]
    runner.release.set()
    for _ in range(500):
        if len(runner.ran) == 2 and slots.running() == 0:
            break
        time.sleep(0.01)
    assert slots.join(5)
    assert [r[0] for r in runner.ran] == [A, C]
    assert sorted(t.id for t in slots.snapshot().complete) == [A, C]  # nothing of B


def one_running_one_queued(runner: FakeRunner) -> Slots:
    """One slot running A, with B queued ahead of it."""
    slots = Slots("exec", 1, runner, on_change=lambda: None)
    slots.start(A, Task(id=A))
    assert runner.started.acquire(timeout=5)
    slots.start(B, Task(id=B))
    return slots


def test_a_drain_hands_queued_tasks_back_and_lets_the_running_one_finish(
    runner: FakeRunner,
) -> None:
    slots = one_running_one_queued(runner)
    assert slots.close() == [B]
    after = slots.snapshot()
    assert ([b.id for b in after.executing], after.queued) == ([A], 0)  # B reported lost
    runner.release.set()
    assert slots.join(5)
    assert [r[0] for r in runner.ran] == [A]
    assert [t.id for t in slots.snapshot().complete] == [A]


def test_a_stop_forgets_queued_tasks(runner: FakeRunner) -> None:
    slots = one_running_one_queued(runner)
    assert sorted(slots.drop_all()) == [A, B]
    assert slots.join(5) and not slots.busy()
    assert [r[0] for r in runner.ran] == [A]


def test_lending_and_queued_tasks_share_the_slots_without_going_negative(
    runner: FakeRunner,
) -> None:
    slots = Slots("exec", 2, runner, on_change=lambda: None)
    slots.start(A, Task(id=A))
    assert runner.started.acquire(timeout=5)
    assert slots.borrow(5) == 1  # the one free slot, lent to a judged task's cases
    assert slots.start(B, Task(id=B))  # assigned for that slot before it was lent: waits
    assert (slots.snapshot().free, slots.snapshot().queued, slots.running()) == (0, 1, 1)
    assert slots.borrow(1) == 0  # nothing free: lending never overdraws
    slots.give_back(1)  # the cases ended: the queued task takes the slot back
    assert runner.started.acquire(timeout=5)
    assert [r[0] for r in runner.ran] == [A, B]
    assert (slots.snapshot().free, slots.snapshot().queued) == (0, 0)
    assert slots.borrow(1) == 0
    runner.release.set()
    assert slots.join(5)
    assert slots.snapshot().free == 2 and slots.borrow(1) == 1  # lending works again


def test_a_task_started_after_another_ended_runs_in_its_spare_thread(
    slots: Slots, runner: FakeRunner
) -> None:
    """An idle slot thread waits as a spare: the next task is handed to it (no new thread,
    whose start the reporter would wait for); join does not wait for spares."""
    runner.release.set()
    assert slots.start(A, Task(id=A))
    assert runner.started.acquire(timeout=5)
    started = time.monotonic()
    assert slots.join(5) and time.monotonic() - started < 1  # the spare thread lives on
    threads = set(threading.enumerate())
    runner.release.clear()
    assert slots.start(B, Task(id=B))
    assert runner.started.acquire(timeout=5)
    assert set(threading.enumerate()) == threads  # B runs in A's thread, no new one
    runner.release.set()
    assert slots.join(5)
    assert [task for task, _ in runner.ran] == [A, B]
    assert [t.id for t in slots.snapshot().complete] == [A, B]
