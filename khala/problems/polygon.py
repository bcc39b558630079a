"""Polygon packages (problem.xml and its files): what maps onto a Khala problem version, what is
left out with a note, and what is refused with a reason (docs/problems.md, "Packages").

Maps: the testset named "tests" (else the first) — its time limit (ms) and memory limit, its
tests by the input and answer path patterns, each test's group and points, the groups' points
policy (each-test → sum, complete-group → all or nothing) and dependencies; the checker and the
interactor (their source, by its type's language); the package's resources under files/
(testlib.h, graders), which every build and run gets.

Refused: file input/output instead of stdin/stdout, a test or answer the package does not hold
(generated tests of a "standard" package: export the full package with tests), a jury program
in a language Khala has no preset for, an unknown points policy, a DTD in problem.xml.

Left out (noted in the version): other testsets, generators, validators, solutions, statements,
feedback policies. Pure, on a Package (khala/problems/package.py).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from fractions import Fraction

from khala.errors import InvalidInput
from khala.model import Group, GroupPolicy
from khala.problems.model import JuryProgram, ProblemLimits, VersionCase, VersionSpec
from khala.problems.package import Package

PATTERN_RE = re.compile(r"%0?\d*d")
POLICIES = {"each-test": GroupPolicy.SUM, "complete-group": GroupPolicy.MIN}
#: Polygon source type prefixes → a Khala language preset.
SOURCE_TYPES = (("cpp.", "cpp"), ("c.", "c"), ("python.3", "python3"),
                ("python.pypy3", "python3"), ("java", "java"), ("go", "go"), ("rust", "rust"))


def source_language(kind: str, what: str) -> str:
    for prefix, language in SOURCE_TYPES:
        if kind.startswith(prefix):
            return language
    raise InvalidInput(f"the {what}'s source type {kind!r} has no Khala language preset")


def _root(pkg: Package) -> ET.Element:
    text = pkg.text("problem.xml")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise InvalidInput("problem.xml: a DTD or entity declaration is refused")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise InvalidInput(f"problem.xml: {exc}") from exc


def _title(root: ET.Element) -> str:
    names = root.findall("names/name")
    english = [n for n in names if n.get("language") == "english"]
    chosen = (english or names)[:1]
    return chosen[0].get("value", "") if chosen else root.get("short-name", "")


def _testset(root: ET.Element, notes: list[str]) -> ET.Element:
    judging = root.find("judging")
    if judging is None:
        raise InvalidInput("problem.xml has no <judging>")
    for attr in ("input-file", "output-file"):
        if judging.get(attr):
            raise InvalidInput(f"the problem reads or writes files ({attr}="
                               f"{judging.get(attr)!r}); Khala judges stdin and stdout only")
    sets = judging.findall("testset")
    if not sets:
        raise InvalidInput("problem.xml has no testset")
    chosen = next((s for s in sets if s.get("name") == "tests"), sets[0])
    others = [s.get("name", "?") for s in sets if s is not chosen]
    if others:
        notes.append(f"testsets {', '.join(others)} left out (only {chosen.get('name')!r})")
    return chosen


def _path(pattern: str, index: int, what: str) -> str:
    if len(PATTERN_RE.findall(pattern)) != 1:
        raise InvalidInput(f"{what} {pattern!r} is not a pattern with one %d")
    return pattern % index


def _limits(testset: ET.Element) -> ProblemLimits:
    try:
        time_ms = int(testset.findtext("time-limit") or "1000")
        memory = int(testset.findtext("memory-limit") or str(256 * 1024 * 1024))
    except ValueError as exc:
        raise InvalidInput(f"problem.xml limits: {exc}") from exc
    return ProblemLimits(time=time_ms / 1000, memory=memory)


def _jury(pkg: Package, root: ET.Element, tag: str) -> JuryProgram | None:
    element = root.find(f"assets/{tag}")
    if element is None:
        return None
    source = element.find("source")
    if source is None or not source.get("path"):
        raise InvalidInput(f"the {tag} has no <source> in problem.xml")
    path = source.get("path", "")
    if not pkg.has(path):
        raise InvalidInput(f"the {tag}'s source {path} is not in the package")
    return JuryProgram(language=source_language(source.get("type", ""), tag),
                       source=pkg.named(path))


def _weights(points: list[Fraction]) -> list[int]:
    """Whole weights in the proportions of `points` (fractions scaled by their common
    denominator)."""
    scale = math.lcm(*(p.denominator for p in points)) if points else 1
    return [int(p * scale) for p in points]


def _groups(testset: ET.Element, cases: list[VersionCase], points: list[Fraction],
            notes: list[str]) -> list[Group]:
    """Polygon's groups as Khala's; without groups but with points, one sum group holding
    every test (so fractional points score exactly)."""
    declared = testset.findall("groups/group")
    if not declared:
        if not any(points):
            return []
        for case in cases:
            case.group = "tests"
        return [Group(name="tests", points=float(sum(points)), policy=GroupPolicy.SUM)]
    groups = []
    for element in declared:
        name = element.get("name", "")
        policy_name = element.get("points-policy", "each-test")
        if policy_name not in POLICIES:
            raise InvalidInput(f"group {name!r}: points policy {policy_name!r} is unknown")
        own = [p for c, p in zip(cases, points, strict=True) if c.group == name]
        total = float(element.get("points") or sum(own))
        deps = [d.get("group", "") for d in element.findall("dependencies/dependency")]
        groups.append(Group(name=name, points=total, policy=POLICIES[policy_name], deps=deps))
        if element.get("feedback-policy"):
            notes.append(f"group {name}: feedback policy {element.get('feedback-policy')} "
                         "left out")
    return groups


def _cases(pkg: Package, testset: ET.Element) -> tuple[list[VersionCase], list[Fraction]]:
    inputs = testset.findtext("input-path-pattern") or "tests/%02d"
    answers = testset.findtext("answer-path-pattern") or "tests/%02d.a"
    cases, points = [], []
    for index, test in enumerate(testset.findall("tests/test"), start=1):
        source, answer = _path(inputs, index, "input-path-pattern"), _path(
            answers, index, "answer-path-pattern")
        for path, what in ((source, "input"), (answer, "answer")):
            if not pkg.has(path):
                how = " (a generated test: export the full package, with tests)" if (
                    test.get("method") == "generated") else ""
                raise InvalidInput(f"test {index}: its {what} {path} is not in the "
                                   f"package{how}")
        try:
            points.append(Fraction(test.get("points") or "0"))
        except (ValueError, ZeroDivisionError) as exc:
            raise InvalidInput(f"test {index}: points {test.get('points')!r}: {exc}") from exc
        cases.append(VersionCase(name=f"{index:02d}", input=pkg.ref(source),
                                 answer=pkg.ref(answer), group=test.get("group", "")))
    if not cases:
        raise InvalidInput("the testset has no tests")
    return cases, points


def read_polygon(pkg: Package, problem: str) -> VersionSpec:
    """The version a Polygon package describes. InvalidInput says what cannot be imported."""
    root = _root(pkg)
    notes: list[str] = []
    testset = _testset(root, notes)
    cases, points = _cases(pkg, testset)
    groups = _groups(testset, cases, points, notes)
    if groups and any(p for p in points):
        by_group: dict[str, list[int]] = {}
        for i, case in enumerate(cases):
            by_group.setdefault(case.group, []).append(i)
        for indices in by_group.values():
            for i, weight in zip(indices, _weights([points[i] for i in indices]), strict=True):
                cases[i].weight = weight
    resources = {f.get("path", "") for f in root.findall("files/resources/file")}
    left = [e.get("path", "") for e in root.findall("files/executables/executable/source")]
    if left:
        notes.append(f"executables (generators, validators) left out: {', '.join(left)}")
    for tag in ("validators", "solutions"):
        if root.find(f"assets/{tag}") is not None:
            notes.append(f"{tag} left out")
    if root.find("statements") is not None:
        notes.append("statements left out")
    files = [pkg.named(p, p[len("files/"):]) for p in sorted(resources)
             if p.startswith("files/") and pkg.has(p)]
    return VersionSpec(problem=problem, title=_title(root), limits=_limits(testset),
                       checker=_jury(pkg, root, "checker"),
                       interactor=_jury(pkg, root, "interactor"), groups=groups, cases=cases,
                       files=files, origin="polygon", notes=notes)
