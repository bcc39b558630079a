"""The problem calls of StubJudicator (khala/rpc/stub.py), in memory: problems and versions as
a judicator keeps them (specs checked against the policy, their files stored in the stub's
`files`), rejudges recorded (nothing runs)."""

from __future__ import annotations

import hashlib
from typing import Any

from khala import model
from khala.config import LimitSettings
from khala.errors import Conflict, InvalidInput, NotFound
from khala.files.refs import FileRef
from khala.problems.model import ProblemInfo, Rejudge, VersionInfo, valid_problem_id
from khala.problems.spec import check_spec, spec_from_bytes, summary


class StubProblems:
    """Mixed into StubJudicator: `problems` by id and `rejudge_list`."""

    policy: LimitSettings
    files: dict[str, bytes]
    problems: dict[str, ProblemInfo]
    rejudge_list: list[Rejudge]

    def _called(self, method: str, *args: Any) -> None:  # StubJudicator's
        raise NotImplementedError

    def _problem(self, problem: str) -> ProblemInfo:
        if problem not in self.problems:
            raise NotFound(f"no problem {problem!r}")
        return self.problems[problem]

    def problem_create(self, problem: str, title: str = "") -> ProblemInfo:
        self._called("problem_create", problem, title)
        if not valid_problem_id(problem):
            raise InvalidInput("a problem id is 1..64 of A-Z a-z 0-9 . _ -")
        if problem in self.problems:
            raise Conflict(f"problem {problem!r} exists")
        self.problems[problem] = ProblemInfo(problem, title, model.now())
        return self.problems[problem]

    def problem_get(self, problem: str) -> ProblemInfo:
        self._called("problem_get", problem)
        return self._problem(problem)

    def problem_list(self) -> list[ProblemInfo]:
        self._called("problem_list")
        return [self.problems[k] for k in sorted(self.problems)]

    def problem_version_add(self, problem: str, spec: bytes) -> tuple[int, ProblemInfo]:
        self._called("problem_version_add", problem, len(spec))
        parsed = spec_from_bytes(spec)
        if parsed.problem != problem:
            raise InvalidInput(f"the spec is of problem {parsed.problem!r}, not {problem!r}")
        check_spec(parsed, self.policy)
        for ref in parsed.refs():
            if ref.sha256 not in self.files:
                raise InvalidInput(f"file {ref.sha256} is not stored: upload it first")
        sha = hashlib.sha256(spec).hexdigest()
        self.files[sha] = bytes(spec)
        info = self.problems.setdefault(problem, ProblemInfo(problem, parsed.title, model.now()))
        number = max([v.version for v in info.versions], default=0) + 1
        info.versions.append(VersionInfo(problem, number, FileRef(sha, len(spec)), model.now(),
                                         summary(parsed)))
        return number, info

    def problem_delete(self, problem: str, version: int = 0) -> None:
        self._called("problem_delete", problem, version)
        info = self._problem(problem)
        if version == 0:
            del self.problems[problem]
            return
        kept = [v for v in info.versions if v.version != version]
        if len(kept) == len(info.versions):
            raise NotFound(f"problem {problem!r} has no version {version}")
        info.versions = kept

    def rejudge(self, spec: Rejudge) -> Rejudge:
        self._called("rejudge", spec)
        info = self._problem(spec.problem)
        if info.latest is None:
            raise InvalidInput(f"problem {spec.problem!r} has no version yet")
        made = Rejudge(problem=spec.problem, version=spec.version or info.latest.version,
                       from_version=spec.from_version, user=spec.user, verdict=spec.verdict,
                       id=model.new_id(), created=model.now())
        self.rejudge_list.append(made)
        return made

    def rejudges(self, problem: str = "", id: str = "") -> list[Rejudge]:  # noqa: A002
        self._called("rejudges", problem, id)
        if id:
            found = [r for r in self.rejudge_list if r.id == id]
            if not found:
                raise NotFound(f"no rejudge {id!r}")
            return found
        self._problem(problem)
        return [r for r in self.rejudge_list if r.problem == problem]
