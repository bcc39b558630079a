"""Finding judicators (static list or etcd), judicator registration and leadership, and the
cluster bus judicators tell each other news on. The etcd side is built on khala/etcd/."""

from __future__ import annotations

from khala.config import DiscoverySettings, split_addresses
from khala.discovery.base import ClusterBus, Discovery, JudicatorEntry, Registration
from khala.discovery.static import LocalBus, StandaloneRegistration, StaticDiscovery

__all__ = [
    "ClusterBus",
    "Discovery",
    "JudicatorEntry",
    "Registration",
    "open_bus",
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
        from khala.discovery.registration import EtcdRegistration

        return EtcdRegistration(split_addresses(settings.etcd), settings.prefix, name, address, ttl)
    return StandaloneRegistration()


def open_bus(settings: DiscoverySettings, name: str) -> ClusterBus:
    if settings.etcd:
        from khala.discovery.bus import EtcdBus

        return EtcdBus(split_addresses(settings.etcd), settings.prefix, name)
    return LocalBus()
