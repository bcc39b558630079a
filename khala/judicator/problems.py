"""The problem side of the judicator (docs/judging.md, "Problems"), on domain types: problems
and their versions, and naming one in a task.

A version arrives as its spec document (khala/problems/spec.py) whose files are stored already
(khala/judicator/files.py); it is checked against this judicator's limits policy, its document
stored as a file too, and every file it needs referred to under the version (so the sweep
keeps them). Methods return domain values and raise the refusals (InvalidInput, NotFound,
Conflict).

A task naming a problem (Execute.problem) gets the version it is judged against recorded
(`attach`): the one asked, or the latest. A version being deleted is marked first; a task is
checked again once stored (`confirm`), so a task and a deletion racing each other cannot both
succeed (each looks after writing; at least one sees the other).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from khala import model
from khala.config import JudicatorSettings
from khala.errors import Conflict, InvalidInput, NotFound
from khala.files.refs import CHUNK, FileRef
from khala.model import ProblemRef, Task
from khala.problems.model import (
    MAX_TITLE,
    ProblemInfo,
    VersionInfo,
    valid_problem_id,
    version_owner,
)
from khala.problems.spec import check_spec, spec_from_bytes, summary
from khala.store.base import Store

log = logging.getLogger(__name__)

ID_WORDS = "a problem id is 1..64 of A-Z a-z 0-9 . _ -, starting with a letter or a digit"


def check_problem_id(problem: str) -> str:
    if not valid_problem_id(problem):
        raise InvalidInput(ID_WORDS)
    return problem


def check_title(title: str) -> str:
    if not isinstance(title, str) or len(title) > MAX_TITLE:
        raise InvalidInput(f"a title is at most {MAX_TITLE} characters")
    return title


class ProblemApi:
    def __init__(self, store: Store, settings: JudicatorSettings) -> None:
        self.store = store
        self.settings = settings

    # ------------------------------------------------------------------ problems

    def create(self, problem: str, title: str) -> ProblemInfo:
        """A new problem (no versions yet). Conflict when the id is taken."""
        check_problem_id(problem)
        if not self.store.problems.create(problem, check_title(title), model.now()):
            raise Conflict(f"problem {problem!r} exists")
        return self.get(problem)

    def get(self, problem: str) -> ProblemInfo:
        found = self.store.problems.get(problem) if valid_problem_id(problem) else None
        if found is None:
            raise NotFound(f"no problem {problem!r}")
        return found

    def all(self) -> list[ProblemInfo]:
        return self.store.problems.all()

    def add_version(self, problem: str, document: bytes) -> int:
        """Store a version given as its spec document; returns its number. The problem is
        created (titled from the spec) when it does not exist. InvalidInput for a spec that is
        malformed, beyond the limits policy, of another problem, or naming files not stored."""
        check_problem_id(problem)
        spec = spec_from_bytes(document)
        if spec.problem != problem:
            raise InvalidInput(f"the spec is of problem {spec.problem!r}, not {problem!r}")
        check_spec(spec, self.settings)
        now = model.now()
        for ref in spec.refs():  # asked for now: the sweep leaves them for the grace period
            size = self.store.files.stat(ref.sha256, now)
            if size is None:
                raise InvalidInput(f"file {ref.sha256} ({ref.size} bytes) is not stored: "
                                   "upload it first")
            if size != ref.size:
                raise InvalidInput(f"file {ref.sha256} is {size} bytes, not {ref.size}")
        stored = self._store_document(document, now)
        self.store.problems.create(problem, spec.title, now)
        try:
            number = self.store.problems.add_version(problem, stored, summary(spec), now)
        except KeyError as exc:
            raise Conflict(f"problem {problem!r} is being deleted") from exc
        self.store.files.refer(version_owner(problem, number),
                               [stored.sha256, *(r.sha256 for r in spec.refs())])
        log.info("problem %s version %d: %d cases, %d bytes", problem, number, len(spec.cases),
                 sum(r.size for r in spec.refs()))
        return number

    def _store_document(self, document: bytes, now: str) -> FileRef:
        ref = FileRef(hashlib.sha256(document).hexdigest(), len(document))
        upload = self.store.files.begin(ref.sha256, ref.size, now)
        if upload:
            for offset in range(0, len(document), CHUNK):
                self.store.files.put(upload, offset, document[offset:offset + CHUNK])
            self.store.files.end(upload)
        return ref

    def delete(self, problem: str, version: int) -> None:
        """Delete one version, or (version 0) the problem with every version. Conflict when
        tasks name it (or a rejudge under way judges against it)."""
        info = self.get(problem)
        if version == 0:
            if self.store.problem_named(problem):
                raise Conflict(f"tasks name problem {problem!r}: remove them first")
            for v in info.versions:
                self._delete_version(problem, v.version)
            if not self.store.problems.delete(problem):
                raise Conflict(f"problem {problem!r} got a new version meanwhile")
            return
        if not any(v.version == version for v in info.versions):
            raise NotFound(f"problem {problem!r} has no version {version}")
        self._delete_version(problem, version)

    def _delete_version(self, problem: str, version: int) -> None:
        busy = [r.id for r in self.store.problems.rejudges(problem)
                if r.version == version and r.state in ("applying", "running")]
        if busy:
            raise Conflict(f"rejudge {busy[0]} judges against version {version}")
        self.store.problems.mark_version(problem, version, True)
        if self.store.problem_named(problem, version):
            self.store.problems.mark_version(problem, version, False)
            raise Conflict(f"tasks were judged against version {version} of {problem!r}: "
                           "remove them (or rejudge them against another version) first")
        self.store.problems.delete_version(problem, version)
        self.store.files.release(version_owner(problem, version))

    # ------------------------------------------------------------------ tasks

    def live_version(self, problem: str, version: int) -> VersionInfo:
        """The version a task asking `version` (0: the latest) is judged against. InvalidInput
        when there is none (a task naming it is invalid)."""
        info = self.store.problems.get(problem) if valid_problem_id(problem) else None
        if info is None:
            raise InvalidInput(f"no problem {problem!r}")
        chosen = info.latest if version == 0 else next(
            (v for v in info.versions if v.version == version and not v.deleting), None)
        if chosen is None:
            raise InvalidInput(f"problem {problem!r} has no version {version}" if version
                               else f"problem {problem!r} has no version yet")
        return chosen

    def attach(self, task: Task) -> Task:
        """`task` (naming a problem) with the version it is judged against recorded: its
        number, spec and jury languages. InvalidInput for a task that also brings judging parts
        of its own, has no language, or names no version."""
        ref = task.execute.problem
        if ref is None:
            return task
        e = task.execute
        own = [name for name, value in (
            ("cases", e.cases), ("compare", e.compare), ("groups", e.groups),
            ("interactor", e.interactor), ("input", e.input), ("standard", e.standard),
            ("data", e.data), ("stop_on_failure", e.stop_on_failure),
            ("skip_failed_groups", e.skip_failed_groups)) if value]
        if own:
            raise InvalidInput(f"a task naming a problem takes its judging from the problem: "
                               f"leave out {', '.join(own)}")
        if not task.compile.language:
            raise InvalidInput("a task naming a problem needs a language (compile.language)")
        chosen = self.live_version(ref.id, ref.version)
        task.execute.problem = resolved(ref, chosen)
        return task

    def confirm(self, task: Task) -> None:
        """After `task` was stored: its version may have been marked for deletion meanwhile;
        then the task goes again and InvalidInput says why."""
        ref = task.execute.problem
        if ref is None:
            return
        version = self.store.problems.version(ref.id, ref.judged)
        if version is not None and not version.deleting:
            return
        if self.store.cancel(task.id, model.now()):
            self.store.remove(task.id)
        raise InvalidInput(f"version {ref.judged} of problem {ref.id!r} is being deleted")


def resolved(ref: ProblemRef, version: VersionInfo) -> ProblemRef:
    """`ref` naming `version`: its number, spec and jury languages."""
    return replace(ref, judged=version.version, spec=version.spec.sha256,
                   spec_size=version.spec.size, checker=str(version.summary.get("checker") or ""),
                   interactor=str(version.summary.get("interactor") or ""))
