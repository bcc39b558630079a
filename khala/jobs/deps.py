"""Dependency cycles between jobs. Pure.

Jobs that wait on each other in a cycle would wait forever: a new job that closes a cycle is
refused (`cycle_through`), and jobs that ended up in one anyway — two judicators each creating
one half at once — are found on every scheduler pass (`cycles`) and shown blocked.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

Graph = Mapping[str, Sequence[str]]  # job name → the names it depends on
MAX_SHOWN = 12  # names of a cycle shown before "…" (a long cycle is shortened)


def cycle_through(name: str, graph: Graph) -> list[str] | None:
    """The shortest dependency cycle through `name` as [name, …, name], or None. Names that
    are no key of `graph` (no such job yet) end a path."""
    parents: dict[str, str] = {}
    frontier = [name]
    while frontier:  # breadth first: the first way back to `name` is a shortest one
        following = []
        for at in frontier:
            for dep in graph.get(at, ()):
                if dep == name:
                    path = [at]
                    while path[-1] != name:
                        path.append(parents[path[-1]])
                    return [name, *reversed(path[:-1]), name] if at != name else [name, name]
                if dep not in parents and dep in graph:
                    parents[dep] = at
                    following.append(dep)
        frontier = following
    return None


def cycles(graph: Graph, wanted: Collection[str] | None = None) -> dict[str, list[str]]:
    """The jobs (of `wanted`, default all) that lie on a dependency cycle, each with a cycle
    through it, `shortened`. Strongly connected components first (linear), then one search per
    component and one more per wanted member not on a cycle found before."""
    found: dict[str, list[str]] = {}
    for component in strong_components(graph):
        if len(component) == 1 and component[0] not in graph.get(component[0], ()):
            continue  # a job alone, not depending on itself: no cycle
        members = set(component)
        sub = {n: [d for d in graph.get(n, ()) if d in members] for n in component}
        for member in component:
            if member in found or (wanted is not None and member not in wanted):
                continue
            cycle = cycle_through(member, sub) or [member, member]  # never None in it
            ring = cycle[:-1]
            for offset, name in enumerate(ring):
                if name not in found and (wanted is None or name in wanted):
                    found[name] = _rotated(ring, offset)
    return found


def _rotated(ring: list[str], offset: int) -> list[str]:
    """The cycle of `ring` from its `offset`-th name, shortened (without copying it whole)."""
    count = min(len(ring), MAX_SHOWN)
    names = [ring[(offset + i) % len(ring)] for i in range(count)]
    return [*names, *(["…"] if count < len(ring) else []), ring[offset]]


def shortened(cycle: list[str]) -> list[str]:
    """At most MAX_SHOWN names of a cycle, then "…" and its first name again."""
    if len(cycle) <= MAX_SHOWN + 1:
        return cycle
    return [*cycle[:MAX_SHOWN], "…", cycle[-1]]


def strong_components(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit); edges to names
    that are not keys of `graph` are ignored. Also scripts/check_imports.py's circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for dep in edges:
                if dep not in graph:
                    continue
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(graph.get(dep, ()))))
                    advanced = True
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found


def describe(cycle: list[str]) -> str:
    return " → ".join(shortened(cycle))
