"""The task life cycle: from which states each transition applies and what it changes."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from khala.model import Result, Status
from khala.rules import lifecycle
from khala.rules.lifecycle import (
    ASSIGN,
    CANCEL,
    FINISH,
    KEEP,
    PROGRESS,
    REJUDGE,
    REQUEUE,
    Eq,
    Less,
    NotNone,
    OneOf,
    State,
    Transition,
    allows,
    apply,
    matches,
    select,
)

NOW = "2024-05-01T12:00:00.000000"
EARLIER = "2024-05-01T11:00:00.000000"
# Every combination of the fields the conditions look at.
STATES = [
    State(done=done, status=status, executor=executor, report_time=EARLIER, result=result)
    for done, status, executor, result in itertools.product(
        (False, True), list(Status), (None, "ex", "other"), (None, Result(b"before"))
    )
]


def ids(state: State) -> str:
    kept = "-result" if state.result is not None else ""
    return f"done={state.done}-{state.status.name}-{state.executor}{kept}"


def queued(s: State) -> bool:
    return not s.done and s.executor is None and s.status in (Status.PENDING, Status.RETRYING)


def held_by_ex(s: State) -> bool:
    return not s.done and s.executor == "ex"


def undone(s: State) -> bool:
    return not s.done


def judged_to_its_end(s: State) -> bool:
    return s.done and s.status in (Status.COMPILE_FAILED, Status.RUN_FAILED, Status.SUCCESS,
                                   Status.UNKNOWN_ERROR)


def cancelled_on_ex_without_result(s: State) -> bool:
    return s.done and s.status == Status.CANCELLED and s.executor == "ex" and s.result is None


RESULT = Result(execute_output=b"42\n")
CASES: list[tuple[Transition, dict[str, object], Callable[[State], bool], dict[str, object]]] = [
    (
        ASSIGN,
        {"executor": "ex", "now": NOW},
        queued,
        {"executor": "ex", "status": Status.COMPILING, "report_time": NOW},
    ),
    (
        PROGRESS,
        {"executor": "ex", "status": Status.RUNNING, "now": NOW},
        held_by_ex,
        {"status": Status.RUNNING, "report_time": NOW},
    ),
    (
        FINISH,
        {"executor": "ex", "status": Status.RUN_FAILED, "result": RESULT, "now": NOW},
        held_by_ex,
        {"done": True, "status": Status.RUN_FAILED, "result": RESULT, "report_time": NOW},
    ),
    (
        REQUEUE,
        {"executor": "ex", "now": NOW},
        held_by_ex,
        {"executor": None, "status": Status.RETRYING, "report_time": NOW},
    ),
    (
        CANCEL,
        {"now": NOW},
        undone,
        {"done": True, "status": Status.CANCELLED, "report_time": NOW},  # executor kept
    ),
    (
        KEEP,
        {"executor": "ex", "result": RESULT},
        cancelled_on_ex_without_result,
        {"result": RESULT},
    ),
    (
        REJUDGE,
        {"now": NOW},
        judged_to_its_end,
        {"done": False, "status": Status.PENDING, "executor": None, "result": None,
         "report_time": NOW},
    ),
]


@pytest.mark.parametrize("state", STATES, ids=ids)
@pytest.mark.parametrize("case", CASES, ids=[c[0].name for c in CASES])
def test_each_transition_from_every_state(
    case: tuple[Transition, dict[str, object], Callable[[State], bool], dict[str, object]],
    state: State,
) -> None:
    transition, args, allowed, changes = case
    after = apply(transition.bind(**args), state)
    if not allowed(state):
        assert after is None
        return
    assert after is not None
    for name in lifecycle.FIELDS:
        expected = changes[name] if name in changes else getattr(state, name)
        assert getattr(after, name) == expected, name


def test_every_transition_is_covered_and_names_only_state_fields() -> None:
    assert {c[0].name for c in CASES} == {t.name for t in lifecycle.TRANSITIONS}
    for transition in lifecycle.TRANSITIONS:
        assert set(transition.when) <= lifecycle.FIELDS
        assert set(transition.sets) <= lifecycle.FIELDS


def test_a_done_task_changes_only_by_a_rejudge_or_to_keep_a_cancelled_runs_output() -> None:
    for state, (transition, args, _, _) in itertools.product(STATES, CASES):
        if state.done and transition not in (KEEP, REJUDGE):
            assert apply(transition.bind(**args), state) is None, transition.name
    cancelled = State(done=True, status=Status.CANCELLED, executor=None, report_time=EARLIER)
    assert apply(REJUDGE.bind(now=NOW), cancelled) is None  # a cancel stays
    # and a kept output once: a result is never replaced
    kept = apply(KEEP.bind(executor="ex", result=RESULT),
                 State(True, Status.CANCELLED, "ex", EARLIER, None))
    assert kept is not None
    assert apply(KEEP.bind(executor="ex", result=Result(b"other")), kept) is None
    assert apply(REJUDGE.bind(now=NOW), kept) is None  # a cancelled run's output: no rejudge


@pytest.mark.parametrize("state", STATES, ids=ids)
def test_final_states_are_exactly_those_no_transition_changes(state: State) -> None:
    """is_final (what a gateway may keep in memory) holds exactly when no transition an
    executor or a client starts applies, whichever executor calls; of the operator's own, a
    rejudge changes only final states (the gateway's memory bounds those in time)."""
    changes = False
    for (transition, args, _, _), caller in itertools.product(CASES, ("ex", "other")):
        if transition in lifecycle.OPERATOR_ONLY:
            continue
        bound = transition.bind(**{**args, **({"executor": caller} if "executor" in args else {})})
        changes = changes or apply(bound, state) is not None
    assert lifecycle.is_final(state) is not changes
    if apply(REJUDGE.bind(now=NOW), state) is not None:
        assert lifecycle.is_final(state)


def test_selections() -> None:
    held = select(lifecycle.HELD, executor="ex")
    assert [s for s in STATES if allows(held, s)] == [s for s in STATES if held_by_ex(s)]
    assert [s for s in STATES if allows(lifecycle.QUEUED, s)] == [s for s in STATES if queued(s)]
    stale = select(lifecycle.STALE, before=NOW)
    expected = [s for s in STATES if not s.done and s.executor is not None]
    assert [s for s in STATES if allows(stale, s)] == expected
    assert not [s for s in STATES if allows(select(lifecycle.STALE, before=EARLIER), s)]


def test_bind_needs_exactly_its_arguments() -> None:
    assert REQUEUE.bind(executor="ex", now=NOW).where == {
        "done": Eq(False),
        "executor": Eq("ex"),
    }
    assert {a.value for a in FINISH.args()} == {"executor", "status", "result", "now"}
    with pytest.raises(TypeError, match="requeue"):
        REQUEUE.bind(now=NOW)
    with pytest.raises(TypeError, match="cancel"):
        CANCEL.bind(now=NOW, executor="ex")
    with pytest.raises(TypeError):
        select(lifecycle.STALE)


@pytest.mark.parametrize("code", [*list(Status), -1, 9, 99])
def test_reported_statuses(code: int) -> None:
    final = {Status.COMPILE_FAILED, Status.RUN_FAILED, Status.SUCCESS, Status.UNKNOWN_ERROR}
    active = {Status.COMPILING, Status.RUNNING}
    assert FINISH.status_for(code) == (code if code in final else Status.UNKNOWN_ERROR)
    assert PROGRESS.status_for(code) == (code if code in active else Status.COMPILING)
    assert isinstance(FINISH.status_for(code), Status)
    with pytest.raises(TypeError):
        ASSIGN.status_for(code)


def test_conditions() -> None:
    assert matches(Eq(None), None) and not matches(Eq(None), "ex")
    assert matches(Eq(False), False) and not matches(Eq(False), True)
    assert matches(OneOf(frozenset({Status.PENDING})), 0)
    assert not matches(OneOf(frozenset({Status.PENDING})), Status.RETRYING)
    assert matches(NotNone(), "") and not matches(NotNone(), None)
    assert matches(Less(NOW), EARLIER) and not matches(Less(NOW), NOW)
