"""The cluster bus on etcd: judicators tell each other that work was queued (the wake key) or
that tasks were recorded done (the finished key), and learn who else is there.

    <prefix>/wake      → <name>\\n<time>              put by announce.py's Announcer
    <prefix>/finished  → <name>\\n<id>,<id>… (or *)   (* : any task may be done)

One watch of the whole prefix follows both keys and the judicators' registrations (a judicator
with nobody else registered announces nothing). A judicator ignores its own announcements. When
the watch was down, the listing that brings it back wakes everyone here and says "any task may
be done", as announcements may have been missed meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from khala.discovery.announce import Announcer
from khala.discovery.base import ClusterBus, FinishedCallback
from khala.etcd.watch import KeyValue, PrefixWatch

log = logging.getLogger(__name__)


class EtcdBus(ClusterBus):
    def __init__(self, endpoints: list[str], prefix: str, name: str) -> None:
        base = prefix.rstrip("/")
        self._name = name
        self._members = f"{base}/judicators/"
        self._own_key = f"{self._members}{name}"
        self._wake_key = f"{base}/wake"
        self._wake: Callable[[], None] | None = None
        self._finished: FinishedCallback | None = None
        self._others: set[str] | None = None  # other judicators' keys; None: not listed yet
        self._listed_once = False
        self._announcer = Announcer(endpoints, name, self._wake_key, f"{base}/finished",
                                    self._alone)
        self._watch = PrefixWatch(endpoints, f"{base}/", self._on_reset, self._on_event)

    def start(self) -> None:
        self._announcer.start()
        self._watch.start()

    def close(self) -> None:
        self._announcer.stop()
        self._watch.stop()

    def announce_wake(self) -> None:
        self._announcer.wake()

    def announce_finished(self, task_ids: list[str]) -> None:
        self._announcer.finished(task_ids)

    def on_wake(self, callback: Callable[[], None]) -> None:
        self._wake = callback

    def on_finished(self, callback: FinishedCallback) -> None:
        self._finished = callback

    def others(self) -> set[str] | None:
        """The other judicators' registration keys, as the watch last showed them (None before
        its first listing)."""
        return self._others

    def _alone(self) -> bool:
        """Whether the watch shows no other judicator (then there is nobody to announce to)."""
        others = self._others
        return others is not None and not others

    # ------------------------------------------------------------------ watch thread

    def _on_reset(self, entries: dict[str, KeyValue]) -> None:
        self._others = {k for k in entries if k.startswith(self._members)} - {self._own_key}
        if self._listed_once:
            self._call_wake()  # announcements may have been missed while the watch was down
            self._call_finished(None)
        self._listed_once = True

    def _on_event(self, key: str, kv: KeyValue | None) -> None:
        if key.startswith(self._members) and key != self._own_key:
            others = set(self._others or ())
            if kv is None:
                others.discard(key)
            else:
                others.add(key)
            self._others = others
        elif key == self._wake_key and kv is not None:
            sender = kv["value"].decode(errors="replace").rsplit("\n", 1)[0]
            if sender != self._name:
                self._call_wake()
        elif key == self._announcer.finished_key and kv is not None:
            sender, _, listed = kv["value"].decode(errors="replace").partition("\n")
            if sender != self._name:
                self._call_finished(None if listed == "*" else listed.split(","))

    def _call_wake(self) -> None:
        callback = self._wake
        if callback is None:
            return
        try:
            callback()
        except Exception:  # a broken callback must not stop the watch
            log.exception("wake callback of %s failed", self._name)

    def _call_finished(self, task_ids: list[str] | None) -> None:
        callback = self._finished
        if callback is None:
            return
        try:
            callback(task_ids)
        except Exception:  # a broken callback must not stop the watch
            log.exception("finished callback of %s failed", self._name)
