"""The connections still in their greeting (a handshake, a first frame), before they take a
server's slot: at most `limit` at once and `per_peer` from one address. At either cap the oldest
connection concerned is dropped for the new one rather than the new one refused: a greeting takes
a node milliseconds, so the oldest is the slowest — a client dripping its bytes — and a node
that greets at once always gets through, however many drippers wait. One peer's connections
only ever push out its own (its cap is reached first); the total cap pushes out the oldest of
all. Pure bookkeeping: the caller holds a lock and closes what it is told to drop."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class GreetLimits:
    """How long a greeting may take in all, and how many may be under way."""

    seconds: float = 5.0
    limit: int = 64
    per_peer: int = 16

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.limit < 1 or self.per_peer < 1:
            raise ValueError("greeting limits must be positive")


class Pending(Generic[T]):
    def __init__(self, limit: int, per_peer: int) -> None:
        self.limit, self.per_peer = limit, per_peer
        self._items: OrderedDict[T, str] = OrderedDict()  # oldest first
        self._peers: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._items)

    def admit(self, item: T, peer: str) -> list[T]:
        """Take `item` (from `peer`) in; returns the items to drop to make room for it."""
        dropped = []
        if self._peers[peer] >= self.per_peer:
            dropped.append(next(i for i, p in self._items.items() if p == peer))
            self.leave(dropped[-1])
        if len(self._items) >= self.limit:
            dropped.append(next(iter(self._items)))
            self.leave(dropped[-1])
        self._items[item] = peer
        self._peers[peer] += 1
        return dropped

    def leave(self, item: T) -> bool:
        """`item` is done greeting; False if it had been dropped already."""
        peer = self._items.pop(item, None)
        if peer is None:
            return False
        self._peers[peer] -= 1
        if not self._peers[peer]:
            del self._peers[peer]
        return True
