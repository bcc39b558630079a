"""Static discovery: a fixed list of judicator addresses; a lone judicator is its own leader and
has nobody to tell news to."""

from __future__ import annotations

from collections.abc import Callable

from khala.discovery.base import (
    ClusterBus,
    Discovery,
    FinishedCallback,
    JudicatorEntry,
    Registration,
)


class StaticDiscovery(Discovery):
    def __init__(self, addresses: list[str], prefix: str = "/khala") -> None:
        self._entries = [
            JudicatorEntry(name=f"{prefix.rstrip('/')}/judicators/static.{i}", address=a)
            for i, a in enumerate(addresses)
        ]

    def judicators(self) -> list[JudicatorEntry]:
        return list(self._entries)


class StandaloneRegistration(Registration):
    """No cluster: nothing to register, and this judicator always leads."""

    def start(self) -> None:
        return None

    def is_leader(self) -> bool:
        return True


class LocalBus(ClusterBus):
    """No cluster: announcements reach nobody, and nobody announces."""

    def announce_wake(self) -> None:
        return None

    def announce_finished(self, task_ids: list[str]) -> None:
        return None

    def on_wake(self, callback: Callable[[], None]) -> None:
        return None

    def on_finished(self, callback: FinishedCallback) -> None:
        return None
