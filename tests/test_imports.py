"""No import circle between Khala's modules: the graph of every `import` and `from … import`
in khala/ (function-level ones included, read with `ast`, nothing imported) has no cycle.

A package's own `__init__` is not an edge of the modules under it: importing a.b runs a's
`__init__` first, which is how Python loads it, not a dependency of a.b on a."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "khala"

#: Circles another change is ending (the store backends, the etcd toolkit, the warm sandbox);
#: each entry goes with it. No other module may join a circle.
KNOWN: set[frozenset[str]] = {
    frozenset({"khala.store.sqlite", "khala.store.sqlite_jobs"}),
    frozenset({"khala.discovery.announce", "khala.discovery.etcd"}),
    frozenset({"khala.sandbox.warm", "khala.sandbox.warm_box"}),
}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _known(name: str, mods: dict[str, Path]) -> str | None:
    """`name` or the closest module above it (an attribute of a module is that module)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            module = _known(target, mods)
            if module is not None and module != name and not name.startswith(module + "."):
                found.add(module)
    return found


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_cycles_finds_a_circle_through_a_function_level_import(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []
    mods = {"k.x": tmp_path / "x.py", "k.y": tmp_path / "y.py"}
    mods["k.x"].write_text("def f():\n    from k.y import g\n")
    mods["k.y"].write_text("from k import x\n")
    graph = {name: imports(name, path, mods) for name, path in mods.items()}
    assert graph == {"k.x": {"k.y"}, "k.y": {"k.x"}}


def test_no_import_circle_in_khala() -> None:
    mods = modules()
    graph = {name: imports(name, path, mods) for name, path in mods.items()}
    assert len(graph) > 100 and graph["khala.gateway.app"]  # it read the package
    new = [sorted(c) for c in cycles(graph) if c not in KNOWN]
    assert new == [], f"import circles: {new}"
