"""The report loop's rules as pure functions: what a report sends, how long it may be held,
what to do with the answer, how long to pause, and when a stopping executor kills its tasks
or gives up. khala/executor/reporter.py does the IO around them; tests drive them directly."""

from __future__ import annotations

from dataclasses import dataclass, field

from khala.executor.slots import Snapshot
from khala.model import Assignment, Task, TaskBrief

BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0
#: After a stop's kill, how long the loop keeps trying to hand work back before it gives up
#: (the judicator's reaper then requeues whatever is left).
HANDBACK_SECONDS = 5.0


def out_of_touch(answered_sent: float, now: float, expiry: float) -> bool:
    """Whether no judicator has answered a report sent within the last `expiry` seconds
    (`answered_sent`: when the last answered report was sent). The judicators count this
    executor silent by then: the leader's reaper requeues what it holds, so its running tasks
    are another executor's to run. Measured from the send, which
    is before any judicator recorded the report, so this executor lets go no later than the
    reaper takes over. `expiry` 0: never."""
    return expiry > 0 and now - answered_sent >= expiry


@dataclass
class Report:
    complete: list[Task]
    executing: list[TaskBrief]
    vacant: int
    hold: float  # seconds the judicator may hold the call (long-poll); 0 = answer at once


def vacancy(snapshot: Snapshot, ahead: int) -> int:
    """How many tasks to ask for: the free slots; with every slot busy, the room left in the
    queue ahead of them (`ahead` − queued, never negative). An executor with a free slot asks
    for no task ahead: a burst goes to idle slots (of any executor) before any task waits
    behind a running one."""
    if snapshot.free > 0:
        return snapshot.free
    return max(0, ahead - snapshot.queued)


def plan_report(snapshot: Snapshot, draining: bool, heartbeat: float, ahead: int = 0) -> Report:
    """A draining executor asks for nothing; with free slots, the report long-polls for up to
    one heartbeat — also when it hands results in: the judicator records them before it holds
    the call (docs/rpc.md), so they are not delayed, and no second report is needed to wait
    for work. With every slot busy it asks for up to `ahead` tasks to queue (`vacancy`) but is
    answered at once: a long-poll for a task that would wait here would race the long-polls
    of idle executors for each new task, and could take it from an idle one. So only reports
    sent anyway (a result to hand in, a status, the heartbeat) take tasks ahead."""
    vacant = 0 if draining else vacancy(snapshot, ahead)
    hold = heartbeat if vacant and snapshot.free > 0 else 0.0
    return Report(snapshot.complete, snapshot.executing, vacant, hold)


@dataclass
class AnswerPlan:
    stop: list[str] = field(default_factory=list)  # running tasks to kill and forget
    start: list[Task] = field(default_factory=list)  # tasks to run
    fail: list[tuple[str, str]] = field(default_factory=list)  # (id, why): hand in as failed
    refuse: list[str] = field(default_factory=list)  # assigned while draining: never run


def read_answer(answer: Assignment, running: set[str], draining: bool) -> AnswerPlan:
    """What one answer asks. An executor that is draining runs nothing new: a task assigned
    to it anyway (a report sent before the drain) is refused, so it is reported neither as
    executing nor complete and the judicator requeues it at the next report."""
    plan = AnswerPlan(stop=[i for i in answer.cancel if i in running])
    if draining:
        plan.refuse = [t.id for t in answer.assign] + [i for i, _ in answer.undecodable]
        return plan
    plan.start = [t for t in answer.assign if t.id not in running]
    plan.fail = [(i, why) for i, why in answer.undecodable if i not in running]
    return plan


#: Results whose outputs together exceed this go with a report, not a hand-in: a report lists
#: every result not yet handed in (also one a hand-in carries), so a hand-in's result may cross
#: the wire twice, and a large one would be decoded twice on the judicator at once.
HAND_IN_MAX_BYTES = 64 * 1024


def result_bytes(task: Task) -> int:
    """The size of a finished task's outputs (steps' and cases' texts), roughly what it costs
    on the wire."""
    result = task.result
    if result is None:
        return 0
    size = sum(len(x) for x in (result.compile_output, result.compile_error,
                                result.execute_output, result.execute_error))
    if result.judgement is not None:
        size += sum(len(c.output) + len(c.error) + len(c.message)
                    for c in result.judgement.cases)
    return size


def taken(sent: list[Task], cancel: list[str]) -> list[Task]:
    """The results a judicator took: those named in its answer's `cancel` (every Khala
    judicator names each result it recorded or dropped as late). One it left out could not
    be written yet (its task was locked in the store): it stays in the outbox and goes again
    with the next report."""
    named = set(cancel)
    return [task for task in sent if task.id in named]


def report_again(plan: AnswerPlan, after: Snapshot, handed_in: bool, draining: bool) -> bool:
    """Whether to report again at once after applying an answer (`after`: the slots then).
    Yes when the answer stopped, failed or refused tasks (tell the judicator now) or something
    waits to be handed in; after a hand-in or new tasks, only while slots are still free (ask
    for more: a long-poll) or the executor drains (its loop ends once nothing is left).
    Starting tasks that filled every slot is no reason: the judicator already holds them as
    ours and any change of a slot (a status, a finish) pokes the loop, so another report
    would cost an RPC and the judicator's CPU per task for nothing."""
    if plan.stop or plan.fail or plan.refuse or after.complete:
        return True
    if plan.start or handed_in:
        return after.free > 0 or draining
    return False


def pause_after(
    report: Report, busy: bool, elapsed: float, early_before: bool, heartbeat: float
) -> tuple[float, bool]:
    """Seconds to pause before the next report, and whether this one was a long-poll that
    ended early with nothing (to remember for the next call).

    - `busy` (`report_again`): go again at once;
    - no free slot (no long-poll): report at heartbeat pace;
    - a long-poll that ended early with nothing (a stale wake, or a judicator that does not
      hold calls): go again at once the first time, sleep out the rest of the hold if it keeps
      happening.
    """
    if busy:
        return 0.0, False
    if not report.hold:
        return heartbeat, False
    left = report.hold - elapsed
    early = left > 0.05 * report.hold
    return (left if early_before and early else 0.0), early


def backoff_after_failure(backoff: float) -> float:
    """No judicator answered: the next pause, doubling up to BACKOFF_MAX."""
    return min(BACKOFF_MAX, max(BACKOFF_MIN, backoff * 2))


@dataclass
class StopClock:
    """Deadlines of a stop: `grace` ends the warm phase (running steps are killed), `give_up`
    ends the hand-back. None: not reached that phase."""

    grace: float | None = None
    give_up: float | None = None


def stop_step(clock: StopClock, now: float, busy: bool, killed: bool, draining: bool) -> str:
    """What a (possibly) stopping loop does next:

    - "run": not stopping, or draining within the grace period;
    - "kill": the grace period ended (or a force came) with tasks still running;
    - "exit": stopping and nothing left to run or hand in, or the hand-back time is over.
    """
    if not draining:
        return "run"
    if not busy:
        return "exit"
    if killed:
        return "exit" if clock.give_up is not None and now >= clock.give_up else "run"
    if clock.grace is not None and now >= clock.grace:
        return "kill"
    return "run"
