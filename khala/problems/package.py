"""Problem packages: a zip archive read a member at a time (never whole), and Khala's own layout
(docs/problems.md, "Packages"):

    problem.toml        title, limits, compare, checker, interactor, groups, cases (all optional
                        but the file itself)
    tests/NAME.in       a case's input, with tests/NAME.ans (or .out, .a) its answer; cases in
    tests/GROUP/NAME.in tests/GROUP/ belong to the group GROUP
    checker.EXT         the checker, when problem.toml names none (EXT: the language's)
    interactor.EXT      the interactor, likewise
    files/…             extra files: in every build beside the source, in every run's data/

`read_khala` turns such a package into a VersionSpec whose files are the package's members
(`Members`: name → FileRef); a Polygon package (problem.xml) is khala/problems/polygon.py's.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from khala.errors import InvalidInput
from khala.files.refs import CHUNK, FileRef
from khala.model import Group, compare_mode_of, group_policy_of
from khala.problems.model import (
    JuryProgram,
    NamedFile,
    ProblemLimits,
    VersionCase,
    VersionSpec,
)
from khala.zipcheck import OPEN_ERRORS, check_archive, entry_parts

MAX_TEXT = 4 * 1024 * 1024  # bytes of problem.toml or problem.xml
#: File extension → the language preset of a jury program.
LANGUAGES = {".c": "c", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".py": "python3",
             ".java": "java", ".go": "go", ".rs": "rust"}
ANSWER_SUFFIXES = (".ans", ".out", ".a")
SIZE_RE = re.compile(r"\A(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?\Z", re.IGNORECASE)
UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


@dataclass
class Package:
    """An open package archive: its checked members by normalised name, and each member's
    digest once it was hashed (`ref`)."""

    archive: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo]
    refs: dict[str, FileRef] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.members

    def names(self) -> list[str]:
        return list(self.members)

    def chunks(self, name: str) -> Iterator[bytes]:
        """A member's bytes, a chunk at a time; InvalidInput past its declared size."""
        info = self.members[name]
        read = 0
        try:
            with self.archive.open(info) as fh:
                while chunk := fh.read(CHUNK):
                    read += len(chunk)
                    if read > info.file_size:
                        raise InvalidInput(f"package member {name!r} is larger than it says")
                    yield chunk
        except OPEN_ERRORS as exc:
            raise InvalidInput(f"package member {name!r} cannot be read: {exc}") from exc

    def text(self, name: str) -> str:
        if self.members[name].file_size > MAX_TEXT:
            raise InvalidInput(f"{name} is larger than {MAX_TEXT} bytes")
        return b"".join(self.chunks(name)).decode("utf-8", errors="replace")

    def ref(self, name: str) -> FileRef:
        """The member's digest (hashed once, on first ask)."""
        if name not in self.refs:
            hasher, size = hashlib.sha256(), 0
            for chunk in self.chunks(name):
                hasher.update(chunk)
                size += len(chunk)
            self.refs[name] = FileRef(hasher.hexdigest(), size)
        return self.refs[name]

    def named(self, name: str, path: str | None = None) -> NamedFile:
        return NamedFile(path or name, self.ref(name))


def open_package(fh: IO[bytes], max_bytes: int, max_files: int) -> Package:
    """The package in the (seekable) file `fh`, its members checked (khala/zipcheck.py) and,
    when the archive has one top folder holding everything, named inside it."""
    try:
        archive = zipfile.ZipFile(fh)
    except OPEN_ERRORS as exc:
        raise InvalidInput(f"a problem package is a zip archive: {exc}") from exc
    infos = [i for i in check_archive(archive, max_bytes, max_files) if not i.is_dir()]
    names = {"/".join(entry_parts(i.filename)): i for i in infos}
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        top = next(iter(tops)) + "/"
        names = {n[len(top):]: i for n, i in names.items()}
    return Package(archive, names)


# ----------------------------------------------------------------------------- Khala's layout


def parse_size(value: Any, what: str) -> int:
    """Bytes from an integer or a text such as "256M", "1GiB", "65536"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = SIZE_RE.match(str(value).strip())
    if match is None:
        raise InvalidInput(f"{what}: {value!r} is no size (e.g. 268435456, 256M, 1G)")
    unit = (match.group(2) or "").upper().rstrip("B").rstrip("I")
    return int(float(match.group(1)) * UNITS[unit])


def natural_key(name: str) -> list[Any]:
    """Names in the order people number them: 2 before 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def language_of(path: str) -> str:
    for suffix, language in LANGUAGES.items():
        if path.endswith(suffix):
            return language
    raise InvalidInput(f"{path}: no language preset has this file extension; give "
                       f"`language` in problem.toml (one of {sorted(set(LANGUAGES.values()))})")


def _jury(pkg: Package, doc: Any, stem: str) -> JuryProgram | None:
    """The checker or interactor a [checker]/[interactor] table names, else `stem`.EXT."""
    table = doc if isinstance(doc, dict) else {}
    path = table.get("path")
    if path is None:
        found = sorted(n for n in pkg.names() if "/" not in n and n.startswith(stem + "."))
        if not found:
            return None
        if len(found) > 1:
            raise InvalidInput(f"several {stem} files ({', '.join(found)}): name one in "
                               f"problem.toml's [{stem}] path")
        path = found[0]
    if not pkg.has(str(path)):
        raise InvalidInput(f"[{stem}] path {path!r} is not in the package")
    path = str(path)
    return JuryProgram(language=str(table.get("language") or language_of(path)),
                       source=pkg.named(path), timeout=table.get("timeout"),
                       cpu_limit=table.get("cpu_limit"),
                       memory_limit=(parse_size(table["memory_limit"], f"[{stem}] memory_limit")
                                     if "memory_limit" in table else None))


def _answer_of(pkg: Package, stem: str) -> str:
    for suffix in ANSWER_SUFFIXES:
        if pkg.has(stem + suffix):
            return stem + suffix
    names = " or ".join(stem + suffix for suffix in ANSWER_SUFFIXES)
    raise InvalidInput(f"test {stem}.in has no answer ({names})")


def discover_cases(pkg: Package, group_order: list[str]) -> list[VersionCase]:
    """The cases under tests/: tests/NAME.in (no group) then tests/GROUP/NAME.in, groups in
    `group_order` (then by name), names in natural order."""
    found: dict[str, list[str]] = {}
    for name in pkg.names():
        if name.startswith("tests/") and name.endswith(".in"):
            rest = name[len("tests/"):-len(".in")]
            group, _, case = rest.rpartition("/")
            if "/" in group:
                raise InvalidInput(f"{name}: tests/ holds cases or group folders of cases, "
                                   "one level deep")
            found.setdefault(group, []).append(case)
    order = sorted(found, key=lambda g: (g != "", g not in group_order,
                                         group_order.index(g) if g in group_order else 0,
                                         natural_key(g)))
    cases = []
    for group in order:
        for case in sorted(found[group], key=natural_key):
            stem = f"tests/{group}/{case}" if group else f"tests/{case}"
            cases.append(VersionCase(name=f"{group}/{case}" if group else case,
                                     input=pkg.ref(stem + ".in"),
                                     answer=pkg.ref(_answer_of(pkg, stem)), group=group))
    return cases


def _listed_cases(pkg: Package, entries: list[Any]) -> list[VersionCase]:
    cases = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "input" not in entry or "answer" not in entry:
            raise InvalidInput(f"[[cases]] {index + 1}: needs input and answer paths")
        for key in ("input", "answer"):
            if not pkg.has(str(entry[key])):
                raise InvalidInput(f"[[cases]] {index + 1}: {entry[key]!r} is not in the package")
        cases.append(VersionCase(name=str(entry.get("name") or index + 1),
                                 input=pkg.ref(str(entry["input"])),
                                 answer=pkg.ref(str(entry["answer"])),
                                 group=str(entry.get("group") or ""),
                                 weight=int(entry.get("weight", 1))))
    return cases


def _limits(doc: dict[str, Any]) -> ProblemLimits:
    table = doc.get("limits") or {}
    factors = table.get("time_factors") or {}
    return ProblemLimits(time=float(table.get("time", 1.0)),
                         memory=parse_size(table.get("memory", "256M"), "limits.memory"),
                         output=parse_size(table.get("output", "64M"), "limits.output"),
                         wall=float(table.get("wall", 0)),
                         time_factors={str(k): float(v) for k, v in factors.items()})


def read_khala(pkg: Package, problem: str) -> VersionSpec:
    """The version a package in Khala's layout describes. InvalidInput says what is wrong."""
    try:
        doc = tomllib.loads(pkg.text("problem.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"problem.toml: {exc}") from exc
    try:
        groups = [Group(name=str(g["name"]), points=float(g.get("points", 0)),
                        policy=group_policy_of(str(g.get("policy", "sum"))),
                        deps=[str(d) for d in g.get("deps") or []])
                  for g in doc.get("groups") or []]
        compare = doc.get("compare") or {}
        weights = {str(k): int(v) for k, v in (doc.get("weights") or {}).items()}
        cases = (_listed_cases(pkg, doc["cases"]) if "cases" in doc
                 else discover_cases(pkg, [g.name for g in groups]))
        for case in cases:
            case.weight = weights.get(case.name, case.weight)
        return VersionSpec(
            problem=problem, title=str(doc.get("title") or ""), limits=_limits(doc),
            mode=compare_mode_of(str(compare.get("mode", "lines"))),
            abs_tol=float(compare.get("abs_tol", 1e-6)),
            rel_tol=float(compare.get("rel_tol", 1e-6)),
            checker=_jury(pkg, doc.get("checker"), "checker"),
            interactor=_jury(pkg, doc.get("interactor"), "interactor"),
            groups=groups, skip_failed_groups=bool(doc.get("skip_failed_groups", False)),
            cases=cases, files=extra_files(pkg, "files/"), origin="khala")
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"problem.toml: {exc}") from exc


def extra_files(pkg: Package, folder: str, keep: Callable[[str], bool] = lambda _: True
                ) -> list[NamedFile]:
    """The members under `folder`, named relative to it."""
    return [pkg.named(n, n[len(folder):]) for n in sorted(pkg.names())
            if n.startswith(folder) and keep(n)]
