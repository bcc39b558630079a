"""Discovery: how gateways and executors find judicators, and how judicators announce
themselves and agree on a leader."""

from __future__ import annotations

from abc import ABC, abstractmethod
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

    def notify_added(self) -> None:  # noqa: B027 - optional hook
        """Tell other judicators that work was queued or a task was cancelled or signalled
        (they wake their report long-polls). Never waits for the cluster."""

    def set_wake_callback(self, callback: object) -> None:  # noqa: B027 - optional hook
        """Called when another judicator queued work."""

    def notify_finished(self, task_ids: list[str]) -> None:  # noqa: B027 - optional hook
        """Tell other judicators that these tasks were recorded done (API v2 waiters)."""

    def set_finished_callback(self, callback: object) -> None:  # noqa: B027 - optional hook
        """Called with the ids another judicator recorded done, or None for "any may be"."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Deregister."""
