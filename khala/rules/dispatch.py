"""Which queued tasks an executor gets first: priorities, then fair share between users.
Pure; the stores gather the candidates with indexed queries and apply `lifecycle.ASSIGN` to
them in this order (docs/jobs.md, "Priorities and fair share").

- A higher `priority` always goes first.
- Among equal priorities, the next task goes to the user with the fewest tasks held by
  executors (`lifecycle.ACTIVE`) counting the ones this order already gave out; ties go to the
  user whose oldest queued task is oldest. A user's own tasks keep their submission order.

So a user who queued 10,000 tasks gets one slot after another only while nobody else waits:
a newcomer's first task goes to the next free slot.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Bounds of one candidate gathering (each step is one indexed lookup, never a scan):
MAX_LEVELS = 8  # priority levels looked at per assignment
MAX_USERS = 256  # users looked at per priority level (the rest wait for a later call)
HEAD_SCAN = 32  # queue rows read in time order per wanted task before falling back to MAX_USERS


@dataclass(frozen=True)
class Candidate:
    id: str
    user: int
    priority: int
    add_time: str


def fair_order(candidates: Iterable[Candidate], active: Mapping[int, int]) -> list[Candidate]:
    """All candidates in dispatch order (see the module doc). `active` counts each user's
    tasks held by executors now."""
    levels: dict[int, dict[int, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    for c in candidates:
        levels[c.priority][c.user].append(c)
    load = dict(active)
    order: list[Candidate] = []
    for priority in sorted(levels, reverse=True):
        queues = {u: sorted(cs, key=lambda c: (c.add_time, c.id), reverse=True)
                  for u, cs in levels[priority].items()}
        heap = [(load.get(u, 0), q[-1].add_time, q[-1].id, u) for u, q in queues.items()]
        heapq.heapify(heap)
        while heap:
            _, _, _, user = heapq.heappop(heap)
            queue = queues[user]
            order.append(queue.pop())
            load[user] = load.get(user, 0) + 1
            if queue:
                heapq.heappush(heap, (load[user], queue[-1].add_time, queue[-1].id, user))
    return order


def head_users(users: Iterable[int], busy: Iterable[int], want: int,
               complete: bool) -> list[int] | None:
    """The users whose tasks can fill the first `want` places of `fair_order` at one priority
    level, from `users`: the level's queued tasks' users in queue order (oldest task first),
    a prefix of the queue — the whole queue if `complete`. `busy`: the users holding tasks now.

    Every user without a held task (load 0) goes before every busy one, in the order of their
    oldest task; so once `want` such users are seen, nobody later in the queue can be among
    the first `want` places and those users are the answer (each gets at least one place).
    If the prefix has fewer, it answers only when it is the whole queue (every user seen, the
    busy ones included); else None: gather the level's users another way (a skip scan)."""
    held = set(busy)
    seen: dict[int, None] = {}  # in order of first appearance
    idle: list[int] = []
    for user in users:
        if user in seen:
            continue
        seen[user] = None
        if user not in held:
            idle.append(user)
            if len(idle) == want:
                return idle
    return list(seen) if complete else None
