"""Discovery: how gateways and executors find judicators, how judicators register and agree on
a leader, and the bus they tell each other news on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class JudicatorEntry:
    name: str  # the registered key, e.g. /khala/judicators/judicator.1
    address: str  # HOST:PORT


class Discovery(ABC):
    """A local, always-current view of the live judicators. No remote call per lookup."""

    @abstractmethod
    def judicators(self) -> list[JudicatorEntry]:
        """The judicators known now."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop watching."""


class Registration(ABC):
    """A judicator's presence in the cluster and its view of leadership."""

    @abstractmethod
    def start(self) -> None:
        """Register and begin keeping the registration alive (and campaigning)."""

    @abstractmethod
    def is_leader(self) -> bool:
        """True only while this judicator holds leadership; cheap, no remote call."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Deregister."""


#: Called with the ids of tasks another judicator recorded done, or None for "any may be".
FinishedCallback = Callable[[list[str] | None], None]


class ClusterBus(ABC):
    """News between judicators: work was queued or a task cancelled or signalled (the others
    wake their report long-polls), tasks were recorded done (they wake their API v2 waiters).
    Announcing never waits for the cluster; a missed announcement costs the others only their
    store re-check."""

    def start(self) -> None:  # noqa: B027 - optional hook
        """Begin listening (and announcing)."""

    @abstractmethod
    def announce_wake(self) -> None:
        """Tell the other judicators that work was queued or a task cancelled or signalled."""

    @abstractmethod
    def announce_finished(self, task_ids: list[str]) -> None:
        """Tell the other judicators that these tasks were recorded done."""

    @abstractmethod
    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call `callback` when another judicator announces a wake."""

    @abstractmethod
    def on_finished(self, callback: FinishedCallback) -> None:
        """Call `callback` when another judicator announces finished tasks."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop listening."""
