"""Fail on any import circle between the modules of khala/.

Every `import` and `from … import` in a module counts, wherever it stands (module level, inside a
function, under `if TYPE_CHECKING:`): a circle broken only by moving one import into a function
is still a circle in the design. `from khala.a import b` is an edge to the module `khala.a.b`
when that is a module, else to `khala.a`. Importing a submodule is not counted as importing its
package's `__init__` (every package would then be a circle with its own modules).

    python scripts/check_imports.py          # exit 1 and list the circles, if any

TOLERATED may list packages whose internal circles are being removed: a circle all of whose
modules lie in one of them is reported but does not fail the check. It is empty.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

from khala.jobs.deps import strong_components

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "khala"
#: Circles wholly inside these packages do not fail the check (listed as tolerated).
TOLERATED: tuple[str, ...] = ()


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package: dotted name → file."""
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


def _resolve(name: str, known: Iterable[str]) -> str | None:
    """The longest known module that `name` is or lies in."""
    known = set(known)
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the package that module `name` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b`: b is a module of a, or a name defined in a
            named = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t for t in named if t in known]
            if len(targets) < len(named):
                targets.append(base)
        else:
            continue
        for target in targets:
            resolved = _resolve(target, known)
            if resolved is not None and resolved != name:
                found.add(resolved)
    return found


def graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    found = modules(root, package)
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, each sorted; sorted by their
    first module."""
    graph = {name: sorted(edges[name]) for name in sorted(edges)}
    return sorted(sorted(c) for c in strong_components(graph) if len(c) > 1)


def tolerated(component: list[str], packages: Iterable[str] = TOLERATED) -> bool:
    return any(all(m == p or m.startswith(p + ".") for m in component) for p in packages)


def path_through(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One circle through the component's first module, as a list of modules (for the
    message: the component alone does not say which imports close it)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return component


def main() -> int:
    edges = graph()
    failing = 0
    for component in circles(edges):
        cycle = " → ".join(path_through(component, edges))
        if tolerated(component):
            print(f"tolerated import circle (being removed): {cycle}")
        else:
            print(f"import circle: {cycle}", file=sys.stderr)
            failing += 1
    if failing:
        print(f"{failing} import circle(s) in {PACKAGE}/", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
