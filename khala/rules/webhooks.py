"""The delivery of a task's webhook, stated once: its states, the changes between them and what
an attempt's outcome makes of it. Pure data, no IO (the vocabulary is khala/rules/states.py's;
the stores translate, khala/judicator/webhooks.py sends).

    pending    the task is not done yet
    ready      done; due at next_at
    sending    claimed by one judicator until lease_until (an expired lease is due again)
    delivered  a 2xx answer (delivered_at)
    failed     after the last try, or the task is gone

    ready:     pending                                       → ready, next_at = now
    claim:     ready and next_at <= now,
               or sending and lease_until < now              → sending, lease_until = until
    attempted: sending under the claimer's own lease         → delivered | failed | ready again
                                                               (next_at = now + backoff · 2^(n-1))
    deferred:  sending under the claimer's own lease         → ready, next_at = now + delay
               (not tried: its host had its share of senders; attempts unchanged)

A claim is one conditional update, so two judicators never send the same attempt; an attempt's
outcome is written only while the claimer's lease stands (a sender whose lease ran out and whose
webhook another judicator claimed again writes nothing).
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from khala import model
from khala.rules.states import Arg, AtMost, Bound, Cond, Eq, Less, Transition

PENDING, READY, SENDING, DELIVERED, FAILED = "pending", "ready", "sending", "delivered", "failed"


@dataclass(frozen=True)
class Delivery:
    """The fields of a webhook's delivery record that its changes read or write."""

    state: str = PENDING
    attempts: int = 0
    next_at: str = ""
    lease_until: str = ""
    last_status: int | None = None
    last_error: str = ""
    delivered_at: str = ""


FIELDS = frozenset(f.name for f in fields(Delivery))

MAKE_READY = Transition("ready", when={"state": Eq(PENDING)},
                        sets={"state": READY, "next_at": Arg.NOW})
_CLAIMED: Mapping[str, Any] = {"state": SENDING, "lease_until": Arg.UNTIL}
#: The two ways a webhook is due; a claim takes one that meets either.
CLAIM = (
    Transition("claim", when={"state": Eq(READY), "next_at": AtMost(Arg.NOW)}, sets=_CLAIMED),
    Transition("claim", when={"state": Eq(SENDING), "lease_until": Less(Arg.NOW)},
               sets=_CLAIMED),
)
PENDING_ONLY: Mapping[str, Cond] = MAKE_READY.when
#: What a claimer may write its outcome over: the claim it made, lease and all.
ATTEMPTED_WHEN: Mapping[str, Cond] = {"state": Eq(SENDING), "lease_until": Eq(Arg.UNTIL)}


def claim(now: str, until: str) -> tuple[Bound, ...]:
    """The claim's alternatives bound: any record meeting one of them may be taken."""
    return tuple(t.bind(now=now, until=until) for t in CLAIM)


def attempted(lease: str, attempts: int, status: int | None, error: str, gone: bool,
              tries: int, backoff: float, now: _dt.datetime) -> Bound:
    """The change an attempt makes: `attempts` made so far (this one included), the answer's
    HTTP `status` (None: no answer) and `error`, `gone` when the task no longer exists. A 2xx
    answer delivers; the last try, or a gone task, fails; anything else is due again after
    `backoff` seconds doubling per try."""
    sets: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error}
    if not gone and status is not None and 200 <= status < 300:
        sets.update(state=DELIVERED, delivered_at=model.format_time(now))
    elif gone or attempts >= tries:
        sets["state"] = FAILED
    else:
        delay = backoff * 2 ** (attempts - 1)
        sets.update(state=READY, next_at=model.format_time(now + _dt.timedelta(seconds=delay)))
    where = Transition("attempted", when=ATTEMPTED_WHEN).bind(until=lease).where
    return Bound(where=where, sets=sets)


def deferred(lease: str, now: _dt.datetime, delay: float) -> Bound:
    """The change that hands a claimed webhook back untried: due again after `delay` seconds,
    its attempts as they were (its host had its share of senders)."""
    sets = {"state": READY, "next_at": model.format_time(now + _dt.timedelta(seconds=delay))}
    where = Transition("deferred", when=ATTEMPTED_WHEN).bind(until=lease).where
    return Bound(where=where, sets=sets)


class HostShares:
    """Who may send now: at most `total` webhooks at once, `per_host` of them to one host."""

    def __init__(self, total: int, per_host: int) -> None:
        if total < 1 or per_host < 1:
            raise ValueError("webhook_workers and webhook_per_host must be at least 1")
        self.total, self.per_host = total, per_host
        self._lock = threading.Lock()
        self._busy: Counter[str] = Counter()

    def free(self) -> bool:
        with self._lock:
            return self._busy.total() < self.total

    def take(self, host: str) -> bool:
        with self._lock:
            if self._busy.total() >= self.total or self._busy[host] >= self.per_host:
                return False
            self._busy[host] += 1
            return True

    def give(self, host: str) -> None:
        with self._lock:
            self._busy[host] -= 1
            if self._busy[host] <= 0:
                del self._busy[host]
