"""Static discovery: a fixed list of judicator addresses; a lone judicator is its own leader."""

from __future__ import annotations

from khala.discovery.base import Discovery, JudicatorEntry, Registration


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
