"""Rendezvous ordering of judicators for executors (pure) and the judicator's draining marks."""

from __future__ import annotations

import time
from collections import Counter

from khala.judicator.notifier import Notifier
from khala.rpc.failover import short_name
from khala.rpc.rendezvous import rendezvous_order

JUDICATORS = ["judicator-a", "judicator-b", "judicator-c"]


def first(key: str, names: list[str]) -> str:
    return rendezvous_order(key, names, str)[0]


def test_order_is_a_stable_permutation() -> None:
    order = rendezvous_order("executor.1", JUDICATORS, str)
    assert sorted(order) == JUDICATORS
    assert rendezvous_order("executor.1", list(reversed(JUDICATORS)), str) == order


def test_executors_spread_over_judicators() -> None:
    counts = Counter(first(f"executor.{i}", JUDICATORS) for i in range(300))
    assert set(counts) == set(JUDICATORS)
    assert min(counts.values()) > 60  # about 100 each


def test_only_the_executors_of_a_lost_judicator_move_and_they_move_back() -> None:
    keys = [f"executor.{i}" for i in range(100)]
    before = {k: first(k, JUDICATORS) for k in keys}
    after = {k: first(k, ["judicator-a", "judicator-c"]) for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "judicator-b"}
    # Each moves to its own next choice.
    assert all(after[k] == rendezvous_order(k, JUDICATORS, str)[1] for k in moved)
    assert {k: first(k, JUDICATORS) for k in keys} == before  # b is back: so are they


def test_short_name_drops_the_prefix() -> None:
    assert short_name("/khala-test-1/judicators/judicator-a") == "judicator-a"
    assert short_name("judicator-a") == "judicator-a"


def test_draining_marks_end_the_poll_lapse_and_are_forgotten() -> None:
    notifier = Notifier()
    assert not notifier.draining("e")
    notifier.wake("e", draining_for=0.2)
    assert notifier.draining("e") and not notifier.draining("other")
    assert notifier.wait("e", notifier.generation(), 1.0) == "wake"
    time.sleep(0.25)
    assert not notifier.draining("e")
    notifier.wake("e", draining_for=30)
    notifier.forget("e")
    assert not notifier.draining("e")
    assert notifier.wait("e", notifier.generation(), 0.01) == "timeout"  # the wake went too
