"""The executor's report loop: hands finished tasks in, leases new ones, and stops in bounded
time. The decisions are the pure rules of khala/executor/rules.py; this module does the IO.

One report is in flight at a time, so the judicator always sees a consistent picture of what
this executor holds. While slots are free the report long-polls (the judicator answers as soon
as work is queued); with every slot busy it asks, without a hold, for up to `ahead` tasks that
wait in Slots' queue for the next free slot (rules.plan_report); when a task finishes during a
long-poll, a second thread hands its result in at once with `hand_in` and the long-poll goes on
(a result is in one call at a time: the report's or the hand-in's). A judicator that does not
know `hand_in` (or a failed one): a `wake` call ends the long-poll instead and the next report
hands the result in.

Stopping: `drain()` takes no new work at once (the next report asks for none, and every
judicator is told that this executor drains, which ends its open long-poll and keeps it from
assigning anything more), lets running tasks finish for `stop_grace` seconds, then kills them
and hands them back (a report that no longer lists them: the judicator requeues them as
Retrying). `force()` kills at once. Either way the loop ends by calling `leave` on the
judicators, which drops this executor from executors() and requeues anything it still holds.
"""

from __future__ import annotations

import logging
import threading
import time

from khala.errors import KhalaError, RemoteError, Unavailable
from khala.executor import rules
from khala.executor.slots import Slots
from khala.executor.stats import collect as collect_stats
from khala.model import Assignment, Language
from khala.rpc.client import JudicatorClient

log = logging.getLogger(__name__)

WAKE_TIMEOUT = 2.0  # seconds for a wake, hand-in, drain or leave call
#: After a failed hand-in (no judicator took it, or an old one that does not know the call),
#: results go with the next report (a wake ends the long-poll) for this many seconds.
HAND_IN_RETRY = 60.0
LEASE_CHECK = 0.1  # seconds between two looks at whether the judicators still hear us


class Reporter:
    def __init__(
        self,
        name: str,
        client: JudicatorClient,
        slots: Slots,
        heartbeat: float,
        rpc_timeout: float,
        stop_grace: float,
        ahead: int = 0,
        expiry: float = 0.0,
    ) -> None:
        self.name = name
        self.client = client
        self.slots = slots
        self.heartbeat = heartbeat
        self.rpc_timeout = rpc_timeout
        self.stop_grace = stop_grace
        self.ahead = ahead  # tasks asked for beyond busy slots, queued in Slots
        self.expiry = expiry  # silence after which the judicators requeue our tasks
        self._answered = time.monotonic()  # when the last answered report was sent
        self._lock = threading.Lock()
        self._draining = False
        self._announce = False  # the drain is still to be told to the judicators
        self._polling = False  # a report with a hold is in flight (set with its snapshot)
        self._clock = rules.StopClock()
        self._killed = False
        self._early = False  # the last long-poll ended early with nothing
        self._judicator = ""  # the address that answered last (for the log)
        self._kick = threading.Event()  # something to report now
        self._wake_needed = threading.Event()  # the waker has something to look at
        self._poked = False  # a change to report now: end an open long-poll
        self._results = False  # a task finished: hand its result in (or end the long-poll)
        self._hand_in_after = 0.0  # monotonic time before which no hand-in is tried
        self._stopped = threading.Event()
        self._waker = threading.Thread(target=self._wake_loop, name="khala-waker", daemon=True)
        self._lease = threading.Thread(target=self._lease_loop, name="khala-lease", daemon=True)
        self.languages: list[Language] = []  # presets offered in each report (judging)
        self.features: list[str] = []  # what it runs beyond plain steps (khala.model)

    # ------------------------------------------------------------------ control (any thread)

    def poke(self, finished: bool = False) -> None:
        """A slot changed: report now (and end an open long-poll). `finished`: a task ended,
        nothing else changed: an open long-poll goes on if its result can be handed in."""
        with self._lock:
            if finished:
                self._results = True
            else:
                self._poked = True
        self._kick.set()
        self._wake_needed.set()

    def drain(self) -> None:
        """Take no new work; give running tasks `stop_grace` seconds, then kill them."""
        with self._lock:
            if self._draining:
                return
            self._draining = self._announce = True
            self._clock.grace = time.monotonic() + self.stop_grace
        handed_back = self.slots.close()
        log.info(
            "executor %s draining (%d running, %.0fs grace)%s",
            self.name,
            self.slots.running(),
            self.stop_grace,
            f"; queued {handed_back} go back to the queue" if handed_back else "",
        )
        self.poke()

    def force(self) -> None:
        """Kill running tasks now, hand them back and stop."""
        log.warning("executor %s stopping now; running tasks go back to the queue", self.name)
        with self._lock:
            self._announce = self._announce or not self._draining
            self._draining = True
            self._clock.grace = time.monotonic()
        self._kill()
        self.poke()

    def draining(self) -> bool:
        with self._lock:
            return self._draining

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        self._waker.start()
        self._lease.start()
        backoff = rules.BACKOFF_MIN
        try:
            while True:
                step = self._step()
                if step == "exit":
                    break
                if step == "kill":
                    self._kill()
                pause = self._report_once()
                if pause is None:  # no judicator answered: back off
                    pause, backoff = backoff, rules.backoff_after_failure(backoff)
                else:
                    backoff = rules.BACKOFF_MIN
                if pause:
                    self._kick.wait(self._bounded(pause))
        finally:
            self._stopped.set()
            self._wake_needed.set()
            self._leave()

    def _step(self) -> str:
        with self._lock:
            clock, killed, draining = self._clock, self._killed, self._draining
        return rules.stop_step(clock, time.monotonic(), self.slots.busy(), killed, draining)

    def _bounded(self, pause: float) -> float:
        """`pause`, cut at the next stop deadline."""
        with self._lock:
            deadline = self._clock.give_up if self._killed else self._clock.grace
        if deadline is None:
            return pause
        return max(0.0, min(pause, deadline - time.monotonic()))

    def _kill(self) -> None:
        with self._lock:
            if self._killed:
                self._clock.give_up = time.monotonic()  # a second force: give up at once
                return
            self._killed = True
            self._clock.give_up = time.monotonic() + rules.HANDBACK_SECONDS
        killed = self.slots.drop_all()
        if killed:
            log.warning("executor %s: killing %s; they go back to the queue", self.name, killed)

    def _report_once(self) -> float | None:
        """One report. None when no judicator answered, else the pause before the next."""
        self._kick.clear()
        with self._lock:  # the snapshot and the polling flag together: see _wake_loop
            report = rules.plan_report(self.slots.snapshot(claim=True), self._draining,
                                       self.heartbeat, self.ahead)
            self._polling = bool(report.hold)
        started = time.monotonic()
        try:
            answer = self.client.report(
                self.name,
                report.complete,
                report.executing,
                report.vacant,
                int(report.hold * 1000),
                self.languages,
                timeout=self.rpc_timeout + report.hold,
                stats=collect_stats(self.slots.capacity, report.vacant, self.slots.usage()),
                features=self.features,
            )
        except (RemoteError, Unavailable, KhalaError) as exc:
            log.warning("report failed: %s", exc)
            self.slots.outbox.unclaim(report.complete)
            return None
        finally:
            with self._lock:
                self._polling = False
        with self._lock:
            self._answered = max(self._answered, started)
        if answer.judicator != self._judicator:
            log.info("executor %s reports to judicator at %s", self.name, answer.judicator)
            self._judicator = answer.judicator
        taken = rules.taken(report.complete, answer.cancel)
        self.slots.outbox.handed_in(taken)
        named = {t.id for t in taken}
        self.slots.outbox.unclaim([t for t in report.complete if t.id not in named])  # sent again
        plan = self._apply(answer)
        busy = rules.report_again(plan, self.slots.snapshot(), bool(report.complete),
                                   self.draining())
        pause, self._early = rules.pause_after(
            report, busy, time.monotonic() - started, self._early, self.heartbeat
        )
        return pause

    def _apply(self, answer: Assignment) -> rules.AnswerPlan:
        plan = rules.read_answer(answer, self.slots.running_ids(), self.draining())
        self.slots.drop(plan.stop)
        for task_id, signum in answer.signals:
            self.slots.signal(task_id, signum)
        for task in plan.start:
            self.slots.start(task.id, task)
        for task_id, error in plan.fail:
            self.slots.start(task_id, None, error)
        if plan.refuse:
            log.warning("draining: refused %s; they go back to the queue", plan.refuse)
        return plan

    def _lease_loop(self) -> None:
        """Stops every running task once no judicator has heard this executor for `expiry`
        seconds (a cut link, a partition): the reaper has requeued them and another executor
        runs them, so running them on here would run them twice. Finished results are kept:
        handed in later, a judicator takes one only for a task this executor still holds
        (a result of a task requeued meanwhile is refused as late), so none is lost when the
        silence was only slowness."""
        while not self._stopped.wait(LEASE_CHECK):
            with self._lock:
                answered = self._answered
            if not rules.out_of_touch(answered, time.monotonic(), self.expiry):
                continue
            held = sorted(self.slots.running_ids())
            if held:
                self.slots.drop(held)
                log.warning(
                    "executor %s: no judicator answered for %.1fs (the expiry): stopped %s; "
                    "the judicators requeue them", self.name, time.monotonic() - answered, held)

    # ------------------------------------------------------------------ wake, drain, leave

    def _wake_loop(self) -> None:
        """Ends open long-polls: tells the judicators about a drain, or wakes the one holding
        our report. The polling flag is set together with the report's snapshot, so a task
        that finished after the snapshot always finds it set here."""
        while not self._stopped.is_set():
            self._wake_needed.wait()
            self._wake_needed.clear()
            if self._stopped.is_set():
                return
            with self._lock:
                announce, self._announce = self._announce, False
                polling = self._polling
                poked, self._poked = self._poked, False
                results, self._results = self._results, False
            try:
                if announce:
                    told = self.client.drain(self.name, timeout=WAKE_TIMEOUT)
                    log.info("executor %s: drain told to %s", self.name, told or "no judicator")
                    continue
                if polling and results and not self._hand_in():
                    poked = True  # no hand-in: end the long-poll, the next report has them
                if polling and poked:
                    self.client.wake(self.name, timeout=WAKE_TIMEOUT)
            except Unavailable:
                pass  # the long-poll ends by its own deadline

    def _hand_in(self) -> bool:
        """Hand in the results no report carries (while a long-poll is open). False when
        they must go with a report instead."""
        if time.monotonic() < self._hand_in_after:
            return False
        sent, left = self.slots.outbox.claim_results(
            lambda t: rules.result_bytes(t) <= rules.HAND_IN_MAX_BYTES)
        if not sent:
            return not left  # the open report carries them, or a report must
        try:
            self.client.hand_in(self.name, sent, timeout=WAKE_TIMEOUT)
        except (RemoteError, Unavailable, KhalaError) as exc:
            log.info("hand-in failed (%s); results go with the next report", exc)
            self._hand_in_after = time.monotonic() + HAND_IN_RETRY
            self.slots.outbox.unclaim(sent)
            return False
        self.slots.outbox.handed_in(sent)
        return not left  # large results: end the long-poll, the next report hands them in

    def _leave(self) -> None:
        told = self.client.leave(self.name, timeout=WAKE_TIMEOUT)
        if told:
            log.info("executor %s left (told %s)", self.name, told)
        else:
            log.warning("executor %s: no judicator took its leave (the reaper will)", self.name)
