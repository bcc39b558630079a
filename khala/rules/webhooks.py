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
from collections import OrderedDict
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
    """Who may send now — at most `total` webhooks at once, `per_host` of them to one host —
    and, for a webhook whose host has its share, when to come back for it.

    Comebacks are booked one after another per host, each `pace` later than the one before:
    the time one of that host's tries takes (its recent average; before any try ended, how long
    its oldest try under way has run), divided by `per_host`. A host's backlog so comes due at
    about the rate the host takes it — a fast receiver's within moments, a slow one's spread
    out, each webhook handed back about once — and never stands in front of other hosts'
    webhooks. `now` is seconds on any steady clock. At most MAX_HOSTS hosts are remembered."""

    MAX_HOSTS = 4096
    MIN_PACE = 0.05  # seconds: the shortest gap between two booked comebacks of one host

    def __init__(self, total: int, per_host: int) -> None:
        if total < 1 or per_host < 1:
            raise ValueError("webhook_workers and webhook_per_host must be at least 1")
        self.total, self.per_host = total, per_host
        self._lock = threading.Lock()
        self._busy: dict[str, list[float]] = {}  # host → start times of its tries under way
        self._taken = 0
        self._hosts: OrderedDict[str, tuple[float, float]] = OrderedDict()  # → (pace, booked)

    def free(self) -> bool:
        with self._lock:
            return self._taken < self.total

    def take(self, host: str, now: float) -> bool:
        with self._lock:
            starts = self._busy.setdefault(host, [])
            if self._taken >= self.total or len(starts) >= self.per_host:
                if not starts:
                    del self._busy[host]
                return False
            starts.append(now)
            self._taken += 1
            return True

    def give(self, host: str, started: float, now: float) -> None:
        """A try to `host` begun at `started` ended at `now`."""
        with self._lock:
            starts = self._busy.get(host, [])
            if started in starts:
                starts.remove(started)
                self._taken -= 1
            if not starts:
                self._busy.pop(host, None)
            pace, booked = self._hosts.pop(host, (0.0, 0.0))
            took = now - started
            self._remember(host, (took if not pace else (pace + took) / 2, booked))

    def comeback(self, host: str, now: float) -> float:
        """Seconds until a webhook for `host`, which has its share now, should be due again."""
        with self._lock:
            pace, booked = self._hosts.pop(host, (0.0, 0.0))
            oldest = min(self._busy.get(host, [now]))
            step = max(self.MIN_PACE, (pace or now - oldest) / self.per_host)
            booked = max(now, booked) + step
            self._remember(host, (pace, booked))
            return booked - now

    def _remember(self, host: str, value: tuple[float, float]) -> None:
        self._hosts[host] = value
        while len(self._hosts) > self.MAX_HOSTS:
            self._hosts.popitem(last=False)
