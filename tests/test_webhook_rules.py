"""The webhook delivery's state machine (khala/rules/webhooks.py): from which states each change
applies and what an attempt's outcome makes of a delivery."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from khala.model import format_time
from khala.rules import webhooks
from khala.rules.states import allows, apply
from khala.rules.webhooks import DELIVERED, FAILED, PENDING, READY, SENDING, Delivery

NOW = dt.datetime(2024, 5, 1, 12, 0, 0)


def t(seconds: float) -> str:
    return format_time(NOW + dt.timedelta(seconds=seconds))


def test_ready_only_from_pending() -> None:
    change = webhooks.MAKE_READY.bind(now=t(0))
    assert apply(change, Delivery()) == Delivery(state=READY, next_at=t(0))
    for state in (READY, SENDING, DELIVERED, FAILED):
        assert apply(change, Delivery(state=state)) is None


@pytest.mark.parametrize(("record", "due"), [
    (Delivery(state=READY, next_at=t(0)), True),  # due at now: at most, not less
    (Delivery(state=READY, next_at=t(1)), False),
    (Delivery(state=SENDING, lease_until=t(-1)), True),  # its sender's lease ran out
    (Delivery(state=SENDING, lease_until=t(0)), False),
    (Delivery(state=PENDING, next_at=t(-5)), False),
    (Delivery(state=DELIVERED, next_at=t(-5)), False),
    (Delivery(state=FAILED, lease_until=t(-5)), False),
])
def test_a_claim_takes_what_is_due(record: Delivery, due: bool) -> None:
    ways = webhooks.claim(t(0), t(30))
    assert any(allows(b.where, record) for b in ways) is due
    if due:
        taken = next(apply(b, record) for b in ways if allows(b.where, record))
        assert (taken.state, taken.lease_until) == (SENDING, t(30))


def claimed(attempts: int = 0) -> Delivery:
    return Delivery(state=SENDING, attempts=attempts, lease_until=t(30))


def test_outcomes_of_an_attempt() -> None:
    def outcome(attempts: int, status: int | None, gone: bool = False) -> Delivery | None:
        change = webhooks.attempted(t(30), attempts, status, "" if status else "refused",
                                    gone=gone, tries=3, backoff=2.0, now=NOW)
        return apply(change, claimed(attempts - 1))

    assert outcome(1, 204) == dataclasses.replace(
        claimed(), state=DELIVERED, attempts=1, last_status=204, delivered_at=t(0))
    assert outcome(1, 500) == dataclasses.replace(
        claimed(), state=READY, attempts=1, last_status=500, next_at=t(2))
    assert outcome(2, None).next_at == t(4)  # type: ignore[union-attr]  # doubling
    assert outcome(3, 500).state == FAILED  # type: ignore[union-attr]  # the last try
    assert outcome(1, 204, gone=True).state == FAILED  # type: ignore[union-attr]


def test_an_outcome_is_written_only_under_the_claimers_own_lease() -> None:
    change = webhooks.attempted(t(30), 1, 204, "", gone=False, tries=3, backoff=1.0, now=NOW)
    assert apply(change, claimed()) is not None
    assert apply(change, dataclasses.replace(claimed(), lease_until=t(90))) is None  # reclaimed
    assert apply(change, dataclasses.replace(claimed(), state=DELIVERED)) is None


def test_a_deferred_webhook_is_due_again_untried() -> None:
    """Claimed while its host had its share of senders: handed back, no try counted."""
    record = dataclasses.replace(claimed(1), last_status=500)
    change = webhooks.deferred(t(30), NOW, 1.0)
    assert apply(change, record) == dataclasses.replace(record, state=READY, next_at=t(1))
    assert apply(change, dataclasses.replace(record, lease_until=t(90))) is None  # reclaimed


def test_host_shares() -> None:
    shares = webhooks.HostShares(total=3, per_host=2)
    assert shares.take("slow.example", 0) and shares.take("slow.example", 0)
    assert not shares.take("slow.example", 0)  # its share
    assert shares.take("fast.example", 0) and not shares.free()
    assert not shares.take("other.example", 0)  # every sender busy
    shares.give("fast.example", 0, 0.1)
    assert shares.free() and shares.take("other.example", 0.1)
    with pytest.raises(ValueError):
        webhooks.HostShares(total=0, per_host=1)


def test_comebacks_are_booked_at_the_pace_of_the_host() -> None:
    """A host's webhooks handed back come due one after another, as fast as its tries have
    gone (per_host at a time): a slow host's backlog spreads out, a fast one's comes soon."""
    shares = webhooks.HostShares(total=8, per_host=2)
    for _ in range(2):
        assert shares.take("slow", 0.0) and shares.take("fast", 0.0)
    # before any try ended: the age of the oldest one under way (no less than MIN_PACE)
    assert shares.comeback("slow", 0.0) == pytest.approx(0.05)
    assert shares.comeback("slow", 2.0) == pytest.approx(1.0)  # its tries ran 2 s so far
    shares.give("slow", 0.0, 5.0)  # a try that took 5 s (the deadline)
    shares.give("fast", 0.0, 0.1)
    assert shares.take("slow", 5.0)
    turns = [shares.comeback("slow", 5.0) for _ in range(4)]
    assert turns == pytest.approx([2.5, 5.0, 7.5, 10.0])  # one after another, 5 s / 2 apart
    assert shares.comeback("slow", 20.0) == pytest.approx(2.5)  # the bookings passed: anew
    assert shares.take("fast", 0.1)
    assert shares.comeback("fast", 0.1) == pytest.approx(0.05)  # 0.1 s / 2
