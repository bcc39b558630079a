"""The report loop's rules, driven without servers."""

from __future__ import annotations

from khala.executor import rules
from khala.executor.rules import Report, StopClock
from khala.executor.slots import Snapshot
from khala.model import Assignment, CaseResult, Judgement, Result, Status, Task, TaskBrief

A, B, C = "a" * 24, "b" * 24, "c" * 24


def snap(complete: int = 0, executing: int = 0, free: int = 2, queued: int = 0) -> Snapshot:
    return Snapshot(
        complete=[Task(id=A, done=True, status=Status.SUCCESS)] * complete,
        executing=[TaskBrief(id=B, status=Status.RUNNING)] * executing,
        free=free,
        queued=queued,
    )


def test_free_slots_and_nothing_to_hand_in_long_poll() -> None:
    report = rules.plan_report(snap(free=2), draining=False, heartbeat=1.5)
    assert (report.vacant, report.hold) == (2, 1.5)


def test_results_handed_in_with_free_slots_long_poll_too() -> None:
    # the judicator records them before holding the call: one report hands in and waits
    report = rules.plan_report(snap(complete=1, free=1), draining=False, heartbeat=1.5)
    assert (report.vacant, report.hold, len(report.complete)) == (1, 1.5, 1)


def test_results_handed_in_without_free_slots_are_answered_at_once() -> None:
    report = rules.plan_report(snap(complete=1, free=0), draining=False, heartbeat=1.5)
    assert (report.vacant, report.hold, len(report.complete)) == (0, 0.0, 1)


def test_no_free_slot_means_no_hold() -> None:
    report = rules.plan_report(snap(executing=1, free=0), draining=False, heartbeat=1.5)
    assert (report.vacant, report.hold, [b.id for b in report.executing]) == (0, 0.0, [B])


def test_draining_asks_for_nothing_and_never_holds() -> None:
    report = rules.plan_report(snap(executing=1, free=1), draining=True, heartbeat=1.5)
    assert (report.vacant, report.hold) == (0, 0.0)


def test_answer_starts_assigned_and_failed_tasks_and_stops_cancelled_running_ones() -> None:
    answer = Assignment(
        assign=[Task(id=A), Task(id=B)], cancel=[C, "d" * 24], undecodable=[("e" * 24, "bad")]
    )
    plan = rules.read_answer(answer, running={B, C}, draining=False)
    assert [t.id for t in plan.start] == [A]  # B already runs here
    assert plan.stop == [C]  # only what runs here is stopped
    assert plan.fail == [("e" * 24, "bad")]
    assert plan.refuse == []
    assert rules.report_again(plan, snap(free=0), handed_in=False, draining=False)  # C stopped


def test_a_draining_executor_refuses_every_assignment() -> None:
    answer = Assignment(assign=[Task(id=A)], cancel=[C], undecodable=[(B, "bad")])
    plan = rules.read_answer(answer, running={C}, draining=True)
    assert (plan.start, plan.fail, plan.refuse, plan.stop) == ([], [], [A, B], [C])
    # report again at once: the refused go back now
    assert rules.report_again(plan, snap(free=0), handed_in=False, draining=True)


def test_empty_answer_is_not_busy() -> None:
    plan = rules.read_answer(Assignment(), running={A}, draining=False)
    assert not rules.report_again(plan, snap(executing=1, free=1), handed_in=False,
                                  draining=False)


def poll(hold: float = 1.0, complete: int = 0) -> Report:
    return Report(snap(complete=complete).complete, [], 1, hold)


def test_pause_after_a_busy_answer_is_zero() -> None:
    assert rules.pause_after(poll(), True, 0.1, True, 1.0) == (0.0, False)
    assert rules.pause_after(poll(0.0, complete=1), True, 0.1, True, 1.0) == (0.0, False)


def started(*ids: str) -> rules.AnswerPlan:
    return rules.AnswerPlan(start=[Task(id=i) for i in ids])


def test_new_tasks_that_fill_every_slot_need_no_report_at_once() -> None:
    assert not rules.report_again(started(A, B), snap(executing=2, free=0), False, False)
    assert not rules.report_again(started(A), snap(executing=2, free=0), True, False)


def test_free_slots_after_new_tasks_or_a_hand_in_ask_again_at_once() -> None:
    assert rules.report_again(started(A), snap(executing=1, free=1), False, False)
    assert rules.report_again(rules.AnswerPlan(), snap(free=2), True, False)


def test_stops_failures_refusals_and_results_to_hand_in_report_at_once() -> None:
    full = snap(executing=2, free=0)
    assert rules.report_again(rules.AnswerPlan(stop=[A]), full, False, False)
    assert rules.report_again(rules.AnswerPlan(fail=[(A, "bad")]), full, False, False)
    assert rules.report_again(rules.AnswerPlan(refuse=[A]), full, False, True)
    assert rules.report_again(rules.AnswerPlan(), snap(complete=1, free=0), False, False)


def test_a_draining_executor_goes_again_after_a_hand_in_but_not_on_nothing() -> None:
    full = snap(executing=2, free=0)
    assert rules.report_again(rules.AnswerPlan(), full, True, True)
    assert not rules.report_again(rules.AnswerPlan(), full, False, True)


def test_an_empty_answer_to_a_long_poll_is_no_reason_by_itself() -> None:
    assert not rules.report_again(rules.AnswerPlan(), snap(free=2), False, False)


def test_pause_without_hold_is_the_heartbeat() -> None:
    assert rules.pause_after(poll(hold=0.0), False, 0.01, False, 0.7) == (0.7, False)


def test_a_long_poll_that_ran_out_goes_again_at_once() -> None:
    assert rules.pause_after(poll(hold=1.0), False, 1.0, True, 1.0) == (0.0, False)


def test_early_empty_long_polls_go_again_once_then_sleep_out_the_hold() -> None:
    pause, early = rules.pause_after(poll(hold=1.0), False, 0.2, False, 1.0)
    assert (pause, early) == (0.0, True)
    pause, early = rules.pause_after(poll(hold=1.0), False, 0.2, early, 1.0)
    assert abs(pause - 0.8) < 1e-9 and early


def test_backoff_doubles_up_to_its_bound() -> None:
    pauses = [rules.BACKOFF_MIN]
    for _ in range(8):
        pauses.append(rules.backoff_after_failure(pauses[-1]))
    assert pauses[:3] == [0.1, 0.2, 0.4]
    assert pauses[-1] == rules.BACKOFF_MAX and max(pauses) == rules.BACKOFF_MAX


def test_stop_steps() -> None:
    clock = StopClock(grace=10.0)
    assert rules.stop_step(StopClock(), 0.0, True, False, False) == "run"  # not stopping
    assert rules.stop_step(clock, 5.0, True, False, True) == "run"  # within grace
    assert rules.stop_step(clock, 5.0, False, False, True) == "exit"  # all handed in
    assert rules.stop_step(clock, 10.0, True, False, True) == "kill"  # grace over
    killed = StopClock(grace=10.0, give_up=15.0)
    assert rules.stop_step(killed, 12.0, True, True, True) == "run"  # handing back
    assert rules.stop_step(killed, 12.0, False, True, True) == "exit"
    assert rules.stop_step(killed, 15.0, True, True, True) == "exit"  # hand-back time over


def test_a_result_the_judicator_did_not_name_stays_to_be_sent_again() -> None:
    """A judicator names every result it recorded (or dropped as late) in `cancel`; one left
    out found its task locked and goes again with the next report."""
    one, two = Task(id="a" * 24), Task(id="b" * 24)
    assert rules.taken([one, two], ["b" * 24, "c" * 24]) == [two]
    assert rules.taken([one, two], []) == []
    assert rules.taken([], ["a" * 24]) == []


def test_result_bytes_counts_the_steps_and_cases_texts() -> None:
    assert rules.result_bytes(Task(id="a" * 24)) == 0
    result = Result(execute_output=b"x" * 10, compile_error=b"e" * 5,
                    judgement=Judgement(cases=[CaseResult(output="o" * 7, message="m")]))
    assert rules.result_bytes(Task(id="a" * 24, result=result)) == 23
    big = Result(execute_output=b"x" * (rules.HAND_IN_MAX_BYTES + 1))
    assert rules.result_bytes(Task(id="a" * 24, result=big)) > rules.HAND_IN_MAX_BYTES


def test_vacancy_is_the_free_slots_else_the_room_ahead() -> None:
    assert rules.vacancy(snap(free=2), ahead=1) == 2  # idle slots first: nothing ahead yet
    assert rules.vacancy(snap(executing=2, free=0), ahead=1) == 1
    assert rules.vacancy(snap(executing=2, free=0, queued=1), ahead=1) == 0
    assert rules.vacancy(snap(executing=2, free=0, queued=3), ahead=1) == 0  # never negative
    assert rules.vacancy(snap(executing=2, free=0), ahead=0) == 0  # today's behaviour


def test_busy_slots_with_room_ahead_ask_for_it_without_holding() -> None:
    report = rules.plan_report(snap(executing=2, free=0), draining=False, heartbeat=1.5,
                               ahead=2)
    assert (report.vacant, report.hold) == (2, 0.0)
    report = rules.plan_report(snap(complete=1, executing=2, free=0, queued=1), False, 1.5, 2)
    assert (report.vacant, report.hold, len(report.complete)) == (1, 0.0, 1)


def test_a_full_queue_asks_for_nothing_and_a_free_slot_long_polls_as_before() -> None:
    full = rules.plan_report(snap(executing=2, free=0, queued=1), False, 1.5, ahead=1)
    assert (full.vacant, full.hold) == (0, 0.0)
    free = rules.plan_report(snap(executing=1, free=1), False, 1.5, ahead=1)
    assert (free.vacant, free.hold) == (1, 1.5)
    draining = rules.plan_report(snap(executing=2, free=0), True, 1.5, ahead=1)
    assert (draining.vacant, draining.hold) == (0, 0.0)



def test_out_of_touch_after_the_expiry_from_the_last_answered_send() -> None:
    assert not rules.out_of_touch(answered_sent=100.0, now=102.9, expiry=3.0)
    assert rules.out_of_touch(answered_sent=100.0, now=103.0, expiry=3.0)
    assert not rules.out_of_touch(answered_sent=0.0, now=1e9, expiry=0.0)  # 0: never
