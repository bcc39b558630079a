"""Finding judicators (static list or etcd) and judicator registration/leadership."""

from __future__ import annotations

from khala.config import DiscoverySettings, split_addresses
from khala.discovery.base import Discovery, JudicatorEntry, Registration
from khala.discovery.static import StandaloneRegistration, StaticDiscovery

__all__ = [
    "Discovery",
    "JudicatorEntry",
    "Registration",
    "open_discovery",
    "open_registration",
]


def open_discovery(settings: DiscoverySettings) -> Discovery:
    if settings.etcd:
        from khala.discovery.etcd import EtcdDiscovery

        return EtcdDiscovery(split_addresses(settings.etcd), settings.prefix)
    return StaticDiscovery(split_addresses(settings.judicators), settings.prefix)


def open_registration(
    settings: DiscoverySettings, name: str, address: str, ttl: int
) -> Registration:
    if settings.etcd:
        from khala.discovery.etcd import EtcdRegistration

        return EtcdRegistration(split_addresses(settings.etcd), settings.prefix, name, address, ttl)
    return StandaloneRegistration()
