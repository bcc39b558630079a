"""Rendezvous (highest random weight) hashing: each client ranks the judicators by a hash of
(its key, the judicator's name) and calls them in that order. Clients with different keys
spread over the judicators; when one goes, only its clients move (each to its own next
choice); when it comes back, they move back. Pure: no IO."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def weight(key: str, name: str) -> int:
    digest = hashlib.blake2b(f"{key}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_order(key: str, items: Sequence[T], name: Callable[[T], str]) -> list[T]:
    """`items` ranked for `key`, best first (ties, which need equal names, by name)."""
    return sorted(items, key=lambda item: (-weight(key, name(item)), name(item)))
