"""Problems: an id, a title and numbered versions; a version is its test cases (input and answer
files), its limits, an optional checker and interactor (one source file each, with a language
preset), its groups, and extra files every run gets (docs/judging.md, "Problems"). Pure data.

A version never changes once stored: its whole content is its *spec*, a canonical JSON document
stored as a file (khala/problems/spec.py) whose SHA-256 the version and every task judged against
it record. Its files are stored once each, by content (khala/files/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from khala.files.refs import FileRef
from khala.model import CompareMode, Group

PROBLEM_ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
PROBLEM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_TITLE = 200
#: Most extra files of a version; and the largest jury source (checker, interactor), bytes.
MAX_EXTRA_FILES = 256
MAX_JURY_SOURCE = 4 * 1024 * 1024


def valid_problem_id(value: object) -> bool:
    return isinstance(value, str) and PROBLEM_ID_RE.match(value) is not None


@dataclass(frozen=True)
class NamedFile:
    """A file of a version under the name it has in the package (and in a run's `data/`)."""

    path: str
    ref: FileRef


@dataclass
class VersionCase:
    name: str  # the package's name of the case (e.g. "03", "g1/05")
    input: FileRef
    answer: FileRef
    group: str = ""  # a group's name (VersionSpec.groups) or "" when there are none
    weight: int = 1


@dataclass
class JuryProgram:
    """A checker or an interactor: one source file in a language preset, and (an interactor)
    its own limits (None: the executor's defaults)."""

    language: str
    source: NamedFile
    timeout: int | None = None  # wall seconds
    cpu_limit: int | None = None
    memory_limit: int | None = None


@dataclass
class ProblemLimits:
    """Per case. `time`: CPU seconds (fractions allowed), times the language's factor; `wall`:
    wall seconds (0: three times the CPU limit plus one second)."""

    time: float = 1.0
    memory: int = 256 * 1024 * 1024
    output: int = 64 * 1024 * 1024
    wall: float = 0.0
    time_factors: dict[str, float] = field(default_factory=dict)

    def cpu_seconds(self, language: str) -> float:
        return self.time * self.time_factors.get(language, 1.0)

    def wall_seconds(self, language: str) -> float:
        return self.wall or 3 * self.cpu_seconds(language) + 1


@dataclass
class VersionSpec:
    """The whole content of a problem version (what its spec file holds)."""

    problem: str
    title: str = ""
    limits: ProblemLimits = field(default_factory=ProblemLimits)
    mode: CompareMode = CompareMode.LINES  # without a checker
    abs_tol: float = 1e-6
    rel_tol: float = 1e-6
    checker: JuryProgram | None = None
    interactor: JuryProgram | None = None
    groups: list[Group] = field(default_factory=list)
    skip_failed_groups: bool = False
    cases: list[VersionCase] = field(default_factory=list)
    files: list[NamedFile] = field(default_factory=list)  # extra files for every build and run
    origin: str = "khala"  # the package format it came from: khala, polygon
    notes: list[str] = field(default_factory=list)  # what an import left out, and why

    def refs(self) -> list[FileRef]:
        """Every file the version needs, each once."""
        found: dict[str, FileRef] = {}
        for case in self.cases:
            found.setdefault(case.input.sha256, case.input)
            found.setdefault(case.answer.sha256, case.answer)
        for jury in (self.checker, self.interactor):
            if jury is not None:
                found.setdefault(jury.source.ref.sha256, jury.source.ref)
        for extra in self.files:
            found.setdefault(extra.ref.sha256, extra.ref)
        return list(found.values())

    def languages(self) -> tuple[str, str]:
        """(the checker's language, the interactor's), "" for none."""
        return (self.checker.language if self.checker else "",
                self.interactor.language if self.interactor else "")


@dataclass
class VersionInfo:
    """A stored version as listings show it: its number, its spec's digest and a summary."""

    problem: str
    version: int
    spec: FileRef
    created: str = ""
    summary: dict[str, Any] = field(default_factory=dict)  # khala/problems/spec.py summary()
    deleting: bool = False  # being deleted: no new task may name it


@dataclass
class ProblemInfo:
    id: str
    title: str = ""
    created: str = ""
    versions: list[VersionInfo] = field(default_factory=list)  # newest last

    @property
    def latest(self) -> VersionInfo | None:
        live = [v for v in self.versions if not v.deleting]
        return live[-1] if live else None


def version_owner(problem: str, version: int) -> str:
    """The owner name under which a version refers to its files (khala/store/files.py)."""
    return f"problem:{problem}:{version}"


REJUDGE_STATES = ("applying", "running", "done", "failed")


@dataclass(frozen=True)
class VerdictChange:
    """How many tasks a rejudge judged again moved from one verdict to another ("" for a task
    that had, or has, no judgement)."""

    before: str
    after: str
    tasks: int


@dataclass(frozen=True)
class RejudgeCounts:
    """The tasks marked with a rejudge: judged again (`done`), waiting in the queue (`queued`)
    and being judged now (`running`)."""

    done: int = 0
    queued: int = 0
    running: int = 0


@dataclass
class Rejudge:
    """Judging a problem's tasks again (docs/judging.md, "Rejudge"): every done task judged
    against the problem (or those of `from_version`, `user`, `verdict`) is queued again, at a
    lower priority than new submissions, against `version` (0 when asked: the latest), each
    keeping its earlier judgement in its history. `state`: applying (tasks being queued, from
    `cursor` on), running (all queued), done (all judged again), failed (`detail` says why).
    `total` tasks were queued; `done` of them are judged again, `pending` are not yet (a task
    a later rejudge took counts in neither); of those pending, `running` are being judged now.
    `changes`: the done ones whose verdict moved, by (before, after) — filled for a reader
    only, not stored."""

    problem: str
    version: int = 0
    from_version: int | None = None
    user: int | None = None
    verdict: str | None = None
    id: str = ""
    state: str = "applying"
    created: str = ""
    cursor: str = ""
    total: int = 0
    done: int = 0
    pending: int = 0
    detail: str = ""
    running: int = 0
    changes: list[VerdictChange] = field(default_factory=list)
