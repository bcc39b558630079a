"""etcd discovery, registration, leader election and the cluster bus against a real etcd started
for the session."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from khala.discovery import registration
from khala.discovery.bus import EtcdBus
from khala.discovery.etcd import EtcdDiscovery
from khala.discovery.registration import EtcdRegistration
from tests.fixtures.servers import EtcdServer

TTL = 2


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> float | None:
    """Seconds until `condition` held, or None if it did not within `timeout`."""
    start = time.monotonic()
    for _ in range(int(timeout / step) + 1):
        if condition():
            return time.monotonic() - start
        time.sleep(step)
    return None


@pytest.fixture
def cluster(etcd_server: EtcdServer, etcd_prefix: str) -> Iterator[Cluster]:
    made = Cluster(etcd_server.url, etcd_prefix)
    yield made
    made.close()


class Cluster:
    """Registrations and discoveries on one prefix, all closed at the end of the test."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.opened: list[EtcdRegistration | EtcdDiscovery | EtcdBus] = []

    def register(self, name: str, address: str = "", ttl: int = TTL) -> EtcdRegistration:
        reg = EtcdRegistration([self.url], self.prefix, name, address or f"{name}:4000", ttl)
        self.opened.append(reg)
        reg.start()
        return reg

    def judicator(self, name: str) -> EtcdBus:
        """A judicator's registration and its cluster bus."""
        self.register(name)
        bus = EtcdBus([self.url], self.prefix, name)
        self.opened.append(bus)
        bus.start()
        return bus

    def discovery(self) -> EtcdDiscovery:
        disc = EtcdDiscovery([self.url], self.prefix)
        self.opened.append(disc)
        return disc

    def close(self) -> None:
        for one in reversed(self.opened):
            one.close()


def addresses(disc: EtcdDiscovery) -> dict[str, str]:
    return {e.name.rsplit("/", 1)[-1]: e.address for e in disc.judicators()}


def leaders(regs: list[EtcdRegistration]) -> list[EtcdRegistration]:
    return [r for r in regs if r.is_leader()]


def test_registration_appears_and_close_removes_it(cluster: Cluster) -> None:
    disc = cluster.discovery()
    assert disc.judicators() == []
    reg = cluster.register("j1", "10.0.0.1:4000")
    assert wait_until(lambda: addresses(disc) == {"j1": "10.0.0.1:4000"}, 3) is not None
    (entry,) = disc.judicators()
    assert entry.name == f"{cluster.prefix}/judicators/j1"
    late = cluster.discovery()  # a discovery started later lists it at once
    assert addresses(late) == {"j1": "10.0.0.1:4000"}
    reg.close()
    gone = wait_until(lambda: addresses(disc) == addresses(late) == {}, 1.5)
    assert gone is not None, "close() must revoke the lease at once"


def test_two_endpoints_fail_over_to_the_live_one(etcd_server: EtcdServer, etcd_prefix: str) -> None:
    from tests.fixtures.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    reg = EtcdRegistration([dead, etcd_server.url], etcd_prefix, "j1", "h:1", TTL)
    disc = EtcdDiscovery([dead, etcd_server.url], etcd_prefix)
    try:
        reg.start()
        assert wait_until(lambda: addresses(disc) == {"j1": "h:1"}, 5) is not None
        assert wait_until(reg.is_leader, 5) is not None
    finally:
        reg.close()
        disc.close()


def test_stalled_registrant_disappears_within_ttl(cluster: Cluster) -> None:
    disc = cluster.discovery()
    reg = cluster.register("stalled")
    assert wait_until(lambda: "stalled" in addresses(disc), 3) is not None
    reg.pause_keepalives(True)  # alive but silent, as a hung or killed judicator
    took = wait_until(lambda: addresses(disc) == {}, TTL + 2)
    print(f"stalled registration gone after {took} s (TTL {TTL})")
    assert took is not None and took <= TTL + 1.5


def test_exactly_one_leader(cluster: Cluster) -> None:
    regs = [cluster.register(f"j{i}") for i in range(3)]
    assert wait_until(lambda: len(leaders(regs)) == 1, 3) is not None
    (leader,) = leaders(regs)
    for _ in range(60):  # over 1.2 s (several keepalive rounds) it stays the one leader
        assert leaders(regs) == [leader]
        time.sleep(0.02)


@pytest.mark.parametrize("death", ["close", "stall"])
def test_leader_failover_within_ttl(cluster: Cluster, death: str) -> None:
    regs = [cluster.register(f"j{i}") for i in range(3)]
    assert wait_until(lambda: len(leaders(regs)) == 1, 3) is not None
    (old,) = leaders(regs)
    rest = [r for r in regs if r is not old]
    if death == "close":
        old.close()
    else:
        old.pause_keepalives(True)
    samples: list[int] = []

    def one_new_leader() -> bool:
        samples.append(len(leaders(regs)))
        return len(leaders(rest)) == 1

    took = wait_until(one_new_leader, TTL + 2)
    print(f"leader failover ({death}): new leader after {took} s (TTL {TTL})")
    assert took is not None and took <= TTL + 2
    assert max(samples) <= 1, "two judicators believed they led at once"
    assert not old.is_leader()


def test_stalled_leader_steps_down_before_its_lease_can_expire(cluster: Cluster) -> None:
    ttl = 3
    reg = cluster.register("j1", ttl=ttl)
    assert wait_until(reg.is_leader, 3) is not None
    reg.pause_keepalives(True)
    took = wait_until(lambda: not reg.is_leader(), ttl)
    print(f"stalled leader stepped down after {took} s (TTL {ttl})")
    assert took is not None and took < ttl - 0.5
    reg.pause_keepalives(False)
    assert wait_until(reg.is_leader, ttl + 2) is not None


def test_a_leader_whose_lease_was_lost_does_not_lead_on_its_new_lease_before_campaigning(
        cluster: Cluster) -> None:
    """As after a partition from etcd: its watch missed the takeover and its lease expired. When
    it reaches etcd again, its key is claimed on a new lease before the campaign asks who leads;
    in between it must not lead (a second reaper beside the new leader's)."""
    old = cluster.register("j1")
    assert wait_until(old.is_leader, 3) is not None
    old._watch.stop()  # cut off: it sees no change of the leader key
    old.pause_keepalives(True)
    new = cluster.register("j2")
    assert wait_until(new.is_leader, TTL + 3) is not None  # the old lease expired
    seen: list[bool] = []
    campaign = old._keeper._after_round

    def spy(client: object, lease_id: int) -> None:
        seen.append(old.is_leader())  # registered again, before the campaign's answer
        assert campaign is not None
        campaign(client, lease_id)  # type: ignore[arg-type]

    old._keeper._after_round = spy
    old.pause_keepalives(False)
    assert wait_until(lambda: len(seen) >= 3, TTL + 3) is not None, "no round after resuming"
    assert seen == [False] * len(seen), seen
    assert not old.is_leader() and new.is_leader()


def test_a_campaign_crossed_by_the_watch_seeing_the_key_go_does_not_lead(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watch sees the leader key go while a campaign's create is answering "yours": what
    the watch saw stands, and the round it kicks decides again."""
    reg = EtcdRegistration([cluster.url], cluster.prefix, "j1", "j1:4000", TTL)
    cluster.opened.append(reg)
    crossed: list[bool] = []

    def create(client: Any, key: str, value: str, lease_id: int) -> int | None:
        holder = real_create(client, key, value, lease_id)
        if not crossed:
            crossed.append(True)
            reg._seen(None)  # as the watch does when the key is deleted meanwhile
        return holder

    real_create = registration.create
    monkeypatch.setattr(registration, "create", create)
    samples: list[bool] = []
    campaign = reg._keeper._after_round
    assert campaign is not None

    def spy(client: Any, lease_id: int) -> None:
        campaign(client, lease_id)
        samples.append(reg.is_leader())

    reg._keeper._after_round = spy
    reg.start()
    # a later round (the one kicked) leads
    assert wait_until(lambda: len(samples) >= 2 and samples[-1], TTL + 3) is not None, samples
    assert crossed and samples[0] is False, samples  # the crossed campaign did not lead


def test_wake_callback_crosses_judicators(cluster: Cluster) -> None:
    a, b = cluster.judicator("a"), cluster.judicator("b")
    woken = {"a": threading.Event(), "b": threading.Event()}
    a.on_wake(woken["a"].set)
    b.on_wake(woken["b"].set)
    # each sees the other (a judicator alone drops its wakes), so both watches are up
    assert wait_until(lambda: bool(a.others()) and bool(b.others()), 3) is not None
    a.announce_wake()
    assert woken["b"].wait(2), "b was not woken by a's announce_wake()"
    assert not woken["a"].wait(0.3), "a must not wake itself"
    woken["b"].clear()
    for _ in range(3):
        b.announce_wake()
    assert woken["a"].wait(2)


def test_finished_ids_cross_judicators(cluster: Cluster) -> None:
    a, b = cluster.judicator("a"), cluster.judicator("b")
    seen: list[list[str] | None] = []
    arrived = threading.Event()
    b.on_finished(lambda ids: (seen.append(ids), arrived.set()))
    assert wait_until(lambda: bool(a.others()) and bool(b.others()), 3) is not None
    a.announce_finished(["a" * 24, "b" * 24])
    assert arrived.wait(5), "b did not hear of a's finished tasks"
    assert seen == [["a" * 24, "b" * 24]]


def test_etcd_restart_keeps_registration_and_leadership(
    cluster: Cluster, etcd_server: EtcdServer
) -> None:
    ttl = 3
    disc = cluster.discovery()
    reg = cluster.register("j1", ttl=ttl)
    assert wait_until(lambda: reg.is_leader() and "j1" in addresses(disc), 3) is not None
    etcd_server.stop()
    try:
        took = wait_until(lambda: not reg.is_leader(), ttl)
        print(f"leader without etcd stepped down after {took} s (TTL {ttl})")
        assert took is not None and took < ttl - 0.5
    finally:
        etcd_server.start()
    back = wait_until(lambda: reg.is_leader() and "j1" in addresses(disc), 10)
    print(f"after the etcd restart: registered and leading again after {back} s")
    assert back is not None
    other = cluster.register("j2", ttl=ttl)
    assert wait_until(lambda: "j2" in addresses(disc), 5) is not None
    assert not other.is_leader()


def _version(url: str, key: str) -> int:
    """How many times `key` was put since it was created (0: absent)."""
    import base64
    import json
    import urllib.request

    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/v3/kv/range", data=body),
                                timeout=5) as response:
        kvs = json.loads(response.read()).get("kvs", [])
    return int(kvs[0].get("version", 0)) if kvs else 0


def test_a_burst_of_adds_costs_a_few_puts_not_one_each(cluster: Cluster) -> None:
    a, b = cluster.judicator("a"), cluster.judicator("b")
    woken = threading.Event()
    b.on_wake(woken.set)
    key = f"{cluster.prefix}/wake"
    assert wait_until(lambda: bool(a.others()), 3) is not None  # a sees b: it announces
    assert wait_until(lambda: bool(b.others()), 3) is not None  # b's watch is up
    before = _version(cluster.url, key)
    for _ in range(1000):
        a.announce_wake()
    assert woken.wait(5), f"b was not woken ({_version(cluster.url, key) - before} puts)"
    assert wait_until(lambda: _version(cluster.url, key) > before, 3) is not None
    time.sleep(0.5)  # whatever was still pending has gone out
    puts = _version(cluster.url, key) - before
    print(f"1000 adds: {puts} puts of the wake key")
    assert 1 <= puts < 100  # coalesced: at most one in flight and one pending


def test_a_lone_judicator_announces_nothing(cluster: Cluster) -> None:
    a = cluster.judicator("a")
    key = f"{cluster.prefix}/wake"
    assert wait_until(lambda: a.others() == set(), 3) is not None  # its watch listed the prefix
    a.announce_wake()
    a.announce_finished(["x" * 24])
    time.sleep(0.5)
    assert _version(cluster.url, key) == 0
    assert _version(cluster.url, f"{cluster.prefix}/finished") == 0
    b = cluster.judicator("b")
    woken = threading.Event()
    b.on_wake(woken.set)
    assert wait_until(lambda: bool(a.others()), 3) is not None  # b registered: a announces again
    assert wait_until(lambda: bool(b.others()), 3) is not None  # b's watch is up
    a.announce_wake()
    assert woken.wait(5), "b was not woken"


def test_a_name_registered_by_another_process_is_not_taken_over(cluster: Cluster) -> None:
    """An orphaned judicator of an earlier cluster still registered under a name: a new one of
    that name must not replace its key (it would take the other's traffic, or the other its
    own). It waits unregistered, leading nothing, and registers once the other's key is gone."""
    disc = cluster.discovery()
    orphan = cluster.register("judicator.local", "10.0.0.1:4000")
    assert wait_until(lambda: addresses(disc) == {"judicator.local": "10.0.0.1:4000"}
                      and orphan.is_leader(), 3) is not None
    newcomer = cluster.register("judicator.local", "10.0.0.2:4000")
    time.sleep(3 * TTL)  # many keepalive rounds of both
    assert addresses(disc) == {"judicator.local": "10.0.0.1:4000"}
    assert orphan.registered() and orphan.is_leader()
    assert not newcomer.registered() and not newcomer.is_leader()
    orphan.close()  # its lease is revoked: the name is free
    assert wait_until(lambda: addresses(disc) == {"judicator.local": "10.0.0.2:4000"},
                      TTL + 2) is not None
    assert wait_until(newcomer.is_leader, TTL + 2) is not None


def test_a_stalled_holder_of_the_name_loses_it_only_when_its_lease_expires(
    cluster: Cluster,
) -> None:
    disc = cluster.discovery()
    first = cluster.register("j", "10.0.0.1:4000")
    assert wait_until(lambda: addresses(disc) == {"j": "10.0.0.1:4000"}, 3) is not None
    second = cluster.register("j", "10.0.0.2:4000")
    first.pause_keepalives(True)  # silent: its lease runs out within the TTL
    assert wait_until(lambda: addresses(disc) == {"j": "10.0.0.2:4000"}, 3 * TTL) is not None
    assert wait_until(second.registered, TTL) is not None
    first.pause_keepalives(False)  # back: its lease is gone, and the name is taken now
    assert wait_until(lambda: not first.registered(), 3 * TTL) is not None
    time.sleep(TTL)
    assert addresses(disc) == {"j": "10.0.0.2:4000"}
    assert second.is_leader() and not first.is_leader()
