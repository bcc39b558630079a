"""A version's spec: its canonical JSON document (what its spec file holds, stored by content),
the checks every version passes, and the summary listings show. Pure.

The document (format 1):

    {"format": 1, "problem": "aplusb", "title": "A+B", "origin": "khala", "notes": [],
     "limits": {"time": 1.0, "memory": 268435456, "output": 67108864, "wall": 0,
                "time_factors": {"python3": 3.0}},
     "compare": {"mode": "tokens", "abs_tol": 1e-6, "rel_tol": 1e-6},
     "checker": {"language": "cpp", "path": "checker.cpp", "sha256": "…", "size": 1234} | null,
     "interactor": {… as checker, "timeout": 5, "cpu_limit": 2, "memory_limit": …} | null,
     "groups": [{"name": "g1", "points": 30, "policy": "min", "deps": []}],
     "skip_failed_groups": false,
     "cases": [{"name": "01", "group": "g1", "weight": 1,
                "input": {"sha256": "…", "size": 4}, "answer": {"sha256": "…", "size": 2}}],
     "files": [{"path": "grader.h", "sha256": "…", "size": 99}]}
"""

from __future__ import annotations

import json
import math
from typing import Any

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.files.refs import FileRef, check_digest
from khala.judging.presets import PRESETS
from khala.judging.validate import check_judging, output_path_problem
from khala.model import (
    INT_MAX,
    Case,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    Group,
    Interactor,
    Task,
    compare_mode_of,
    group_policy_of,
)
from khala.problems.model import (
    MAX_EXTRA_FILES,
    MAX_JURY_SOURCE,
    MAX_TITLE,
    JuryProgram,
    NamedFile,
    ProblemLimits,
    VersionCase,
    VersionSpec,
    valid_problem_id,
)

FORMAT = 1
#: Most bytes of a spec document (a thousand cases take about 300 KB).
MAX_SPEC_BYTES = 16 * 1024 * 1024


# ----------------------------------------------------------------------------- to JSON


def _ref(ref: FileRef) -> dict[str, Any]:
    return {"sha256": ref.sha256, "size": ref.size}


def _jury(jury: JuryProgram | None) -> dict[str, Any] | None:
    if jury is None:
        return None
    return {"language": jury.language, "path": jury.source.path, **_ref(jury.source.ref),
            "timeout": jury.timeout, "cpu_limit": jury.cpu_limit,
            "memory_limit": jury.memory_limit}


def spec_document(spec: VersionSpec) -> dict[str, Any]:
    lim = spec.limits
    return {
        "format": FORMAT, "problem": spec.problem, "title": spec.title, "origin": spec.origin,
        "notes": list(spec.notes),
        "limits": {"time": lim.time, "memory": lim.memory, "output": lim.output,
                   "wall": lim.wall, "time_factors": dict(sorted(lim.time_factors.items()))},
        "compare": {"mode": str(spec.mode), "abs_tol": spec.abs_tol, "rel_tol": spec.rel_tol},
        "checker": _jury(spec.checker), "interactor": _jury(spec.interactor),
        "groups": [{"name": g.name, "points": g.points, "policy": str(g.policy),
                    "deps": list(g.deps)} for g in spec.groups],
        "skip_failed_groups": spec.skip_failed_groups,
        "cases": [{"name": c.name, "group": c.group, "weight": c.weight,
                   "input": _ref(c.input), "answer": _ref(c.answer)} for c in spec.cases],
        "files": [{"path": f.path, **_ref(f.ref)} for f in spec.files],
    }


def spec_bytes(spec: VersionSpec) -> bytes:
    """The canonical document: the same spec always gives the same bytes (and digest)."""
    return json.dumps(spec_document(spec), sort_keys=True, separators=(",", ":")).encode()


# ----------------------------------------------------------------------------- from JSON


def _file_ref(doc: Any, what: str) -> FileRef:
    if not isinstance(doc, dict):
        raise InvalidInput(f"{what}: a file is {{sha256, size}}")
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(f"{what}: size must be an integer >= 0")
    return FileRef(check_digest(doc.get("sha256"), f"{what} sha256"), size)


def _opt_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{what} must be an integer")
    return value


def _jury_from(doc: Any, what: str) -> JuryProgram | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{what} must be an object")
    return JuryProgram(language=str(doc.get("language") or ""),
                       source=NamedFile(str(doc.get("path") or what), _file_ref(doc, what)),
                       timeout=_opt_int(doc.get("timeout"), f"{what} timeout"),
                       cpu_limit=_opt_int(doc.get("cpu_limit"), f"{what} cpu_limit"),
                       memory_limit=_opt_int(doc.get("memory_limit"), f"{what} memory_limit"))


def _limits_from(doc: dict[str, Any]) -> ProblemLimits:
    factors = doc.get("time_factors") or {}
    if not isinstance(factors, dict):
        raise InvalidInput("limits.time_factors must map language names to numbers")
    return ProblemLimits(time=float(doc.get("time", 1.0)), memory=int(doc.get("memory", 0)),
                         output=int(doc.get("output", 0)), wall=float(doc.get("wall") or 0),
                         time_factors={str(k): float(v) for k, v in factors.items()})


def spec_from_document(doc: Any) -> VersionSpec:
    """InvalidInput for anything that is not a spec document (types, digests, names)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidInput(f"not a problem spec document of format {FORMAT}")
    try:
        compare = doc.get("compare") or {}
        return VersionSpec(
            problem=str(doc["problem"]), title=str(doc.get("title") or ""),
            origin=str(doc.get("origin") or "khala"),
            notes=[str(n) for n in doc.get("notes") or []],
            limits=_limits_from(doc.get("limits") or {}),
            mode=compare_mode_of(str(compare.get("mode", "lines"))),
            abs_tol=float(compare.get("abs_tol", 1e-6)),
            rel_tol=float(compare.get("rel_tol", 1e-6)),
            checker=_jury_from(doc.get("checker"), "checker"),
            interactor=_jury_from(doc.get("interactor"), "interactor"),
            groups=[Group(name=str(g["name"]), points=float(g.get("points", 0)),
                          policy=group_policy_of(str(g.get("policy", "sum"))),
                          deps=[str(d) for d in g.get("deps") or []])
                    for g in doc.get("groups") or []],
            skip_failed_groups=bool(doc.get("skip_failed_groups", False)),
            cases=[VersionCase(name=str(c.get("name") or i + 1),
                               input=_file_ref(c.get("input"), f"case {i + 1} input"),
                               answer=_file_ref(c.get("answer"), f"case {i + 1} answer"),
                               group=str(c.get("group") or ""), weight=int(c.get("weight", 1)))
                   for i, c in enumerate(doc.get("cases") or [])],
            files=[NamedFile(str(f["path"]), _file_ref(f, f"file {f.get('path')!r}"))
                   for f in doc.get("files") or []],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"malformed problem spec: {exc}") from exc


def spec_from_bytes(data: bytes) -> VersionSpec:
    if len(data) > MAX_SPEC_BYTES:
        raise InvalidInput(f"a problem spec is at most {MAX_SPEC_BYTES} bytes")
    try:
        return spec_from_document(json.loads(data))
    except ValueError as exc:
        raise InvalidInput(f"a problem spec is JSON: {exc}") from exc


# ----------------------------------------------------------------------------- checks


def judging_task(spec: VersionSpec, language: str = "", sources: dict[str, str] | None = None
                 ) -> Task:
    """The judging fields a task of `language` gets from the version (khala/model/task.py's own
    types): cases (their input and answer come from files: left empty here), groups, checker,
    interactor and limits. `sources` maps the jury programs' sha256 to their text (a
    placeholder when absent: enough for the checks)."""
    texts = sources or {}
    lim = spec.limits
    cpu = max(1, math.ceil(lim.cpu_seconds(language)))
    wall = max(1, math.ceil(lim.wall_seconds(language)))
    cases = [Case(weight=c.weight, group=c.group, timeout=wall, cpu_limit=cpu,
                  memory_limit=lim.memory or None, output_limit=lim.output or None)
             for c in spec.cases]
    compare = Compare(mode=spec.mode, abs_tol=spec.abs_tol, rel_tol=spec.rel_tol)
    if spec.checker is not None:
        ref = spec.checker.source.ref
        compare = Compare(mode=CompareMode.CHECKER, abs_tol=spec.abs_tol, rel_tol=spec.rel_tol,
                          checker=Checker(spec.checker.language, texts.get(ref.sha256, "x")))
    interactor = None
    if spec.interactor is not None:
        j = spec.interactor
        interactor = Interactor(language=j.language, source=texts.get(j.source.ref.sha256, "x"),
                                timeout=j.timeout, cpu_limit=j.cpu_limit,
                                memory_limit=j.memory_limit)
        if spec.checker is None:
            compare = None  # type: ignore[assignment]  # the interactor decides
    execute = Execute(cases=cases, compare=compare, groups=list(spec.groups),
                      skip_failed_groups=spec.skip_failed_groups, interactor=interactor,
                      timeout=wall, cpu_limit=cpu, memory_limit=lim.memory or None,
                      output_limit=lim.output or None)
    return Task(compile=Compile(language=language), execute=execute)


def _check_files(spec: VersionSpec) -> None:
    if len(spec.files) > MAX_EXTRA_FILES:
        raise InvalidInput(f"{len(spec.files)} extra files, more than {MAX_EXTRA_FILES}")
    seen: set[str] = set()
    for extra in spec.files:
        problem = output_path_problem(extra.path)
        if problem is not None:
            raise InvalidInput(f"extra file {extra.path!r} {problem}")
        if extra.path in seen:
            raise InvalidInput(f"extra file {extra.path!r} is named twice")
        seen.add(extra.path)
    for what, jury in (("checker", spec.checker), ("interactor", spec.interactor)):
        if jury is not None and jury.source.ref.size > MAX_JURY_SOURCE:
            raise InvalidInput(f"the {what}'s source is larger than {MAX_JURY_SOURCE} bytes")
        if jury is not None and jury.language not in PRESETS:
            raise InvalidInput(f"{what} language {jury.language!r} is no language preset; "
                               f"one of {sorted(PRESETS)}")


def check_spec(spec: VersionSpec, policy: LimitSettings) -> None:
    """What every stored version satisfies; InvalidInput says what does not."""
    if not valid_problem_id(spec.problem):
        raise InvalidInput("a problem id is 1..64 of A-Z a-z 0-9 . _ -, starting with a "
                           "letter or digit")
    if len(spec.title) > MAX_TITLE:
        raise InvalidInput(f"a title is at most {MAX_TITLE} characters")
    if not spec.cases:
        raise InvalidInput("a problem version needs at least one test case")
    lim = spec.limits
    if not (math.isfinite(lim.time) and 0 < lim.time <= policy.max_cpu_limit):
        raise InvalidInput(f"limits.time must be within (0, {policy.max_cpu_limit}] seconds")
    if not 0 < lim.memory <= policy.max_memory_limit:
        raise InvalidInput(f"limits.memory must be within 1..{policy.max_memory_limit} bytes")
    if not 0 < lim.output <= policy.max_output_limit:
        raise InvalidInput(f"limits.output must be within 1..{policy.max_output_limit} bytes")
    if not (math.isfinite(lim.wall) and 0 <= lim.wall <= INT_MAX):
        raise InvalidInput("limits.wall must be 0 (derived) or a number of seconds")
    for name, factor in lim.time_factors.items():
        if name not in PRESETS or not (math.isfinite(factor) and 0 < factor <= 100):
            raise InvalidInput(f"time factor of {name!r}: a language preset and a number "
                               "within (0, 100]")
        if lim.time * factor > policy.max_cpu_limit:
            raise InvalidInput(f"limits.time × the factor of {name} is beyond "
                               f"max_cpu_limit ({policy.max_cpu_limit} s)")
    _check_files(spec)
    check_judging(judging_task(spec), policy)


def summary(spec: VersionSpec) -> dict[str, Any]:
    """What listings show of a version without reading its spec file."""
    lim = spec.limits
    return {
        "title": spec.title, "origin": spec.origin, "cases": len(spec.cases),
        "bytes": sum(r.size for r in spec.refs()),
        "limits": {"time": lim.time, "memory": lim.memory, "output": lim.output,
                   "wall": lim.wall_seconds(""), "time_factors": dict(lim.time_factors)},
        "checker": spec.checker.language if spec.checker else None,
        "interactor": spec.interactor.language if spec.interactor else None,
        "groups": [{"name": g.name, "points": g.points, "policy": str(g.policy),
                    "deps": list(g.deps),
                    "cases": sum(1 for c in spec.cases if c.group == g.name)}
                   for g in spec.groups],
        "files": [f.path for f in spec.files], "notes": list(spec.notes),
    }
