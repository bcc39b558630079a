"""The import-circle check of `make lint` (scripts/check_imports.py): it finds circles through
module-level and function-level imports, and khala/ has none outside the tolerated packages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", ROOT / "scripts" /
                                                  "check_imports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_imports", module)
    spec.loader.exec_module(module)
    return module


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    check = checker()
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "def thing():\n    from pkg import a\n    return a\n",
        "pkg/c.py": "import pkg.a\n",
    })
    edges = check.graph(tmp_path, "pkg")
    assert edges["pkg.b"] == {"pkg.a"} and edges["pkg.c"] == {"pkg.a"}
    assert check.circles(edges) == [["pkg.a", "pkg.b"]]
    assert check.path_through(["pkg.a", "pkg.b"], edges) == ["pkg.a", "pkg.b", "pkg.a"]


def test_relative_imports_and_submodules_of_a_package(tmp_path: Path) -> None:
    check = checker()
    write(tmp_path, {
        "pkg/__init__.py": "from .sub import helper\n",
        "pkg/sub/__init__.py": "from . import helper\n",
        "pkg/sub/helper.py": "from ..sub import other\n",
        "pkg/sub/other.py": "import os\n",
    })
    edges = check.graph(tmp_path, "pkg")
    assert edges == {"pkg": {"pkg.sub.helper"}, "pkg.sub": {"pkg.sub.helper"},
                     "pkg.sub.helper": {"pkg.sub.other"}, "pkg.sub.other": set()}
    assert check.circles(edges) == []


def test_only_circles_wholly_inside_a_tolerated_package_are_tolerated() -> None:
    check = checker()
    assert check.tolerated(["khala.gateway.a", "khala.gateway.v2.b"], ["khala.gateway"])
    assert not check.tolerated(["khala.gateway.a", "khala.store"], ["khala.gateway"])
    assert not check.tolerated(["khala.gatewayx.a", "khala.gatewayx.b"], ["khala.gateway"])


def test_khala_has_no_import_circle() -> None:
    check = checker()
    edges = check.graph()
    failing = [c for c in check.circles(edges) if not check.tolerated(c)]
    assert failing == [], [" → ".join(check.path_through(c, edges)) for c in failing]
