"""Problems on the wire (docs/rpc.md, "Problems"): a task's problem reference and history,
problems with their versions, rejudges. A version's content travels as its spec document
(khala/problems/spec.py), the bytes its digest is taken of."""

from __future__ import annotations

import json
from typing import Any

from khala.errors import InvalidInput
from khala.model import Judged, ProblemRef, status_of
from khala.problems.model import ProblemInfo, Rejudge, VerdictChange, VersionInfo
from khala.rpc import judicator_thrift as T
from khala.rpc.convert.files import file_ref_from_thrift, file_ref_to_thrift
from khala.rpc.convert.results import judgement_from_thrift, judgement_to_thrift


def problem_ref_to_thrift(ref: ProblemRef | None) -> Any:
    if ref is None:
        return None
    return T.ProblemRef(id=ref.id, version=ref.version or None, judged=ref.judged or None,
                        spec=ref.spec or None, spec_size=ref.spec_size or None,
                        checker=ref.checker or None,
                        interactor=ref.interactor or None)


def problem_ref_from_thrift(wire: Any) -> ProblemRef | None:
    """InvalidInput for a negative version."""
    if wire is None:
        return None
    version = wire.version or 0
    if not isinstance(version, int) or version < 0:
        raise InvalidInput("problem.version must be 0 (the latest) or a version's number")
    return ProblemRef(id=wire.id or "", version=version, judged=wire.judged or 0,
                      spec=wire.spec or "", spec_size=wire.spec_size or 0,
                      checker=wire.checker or "",
                      interactor=wire.interactor or "")


def judged_to_thrift(entry: Judged) -> Any:
    return T.Judged(at=entry.at, rejudge=entry.rejudge, version=entry.version,
                    status=int(entry.status), executor=entry.executor,
                    report_time=entry.report_time,
                    judgement=judgement_to_thrift(entry.judgement))


def judged_from_thrift(wire: Any) -> Judged:
    return Judged(at=wire.at or "", rejudge=wire.rejudge or "", version=wire.version or 0,
                  status=status_of(wire.status or 0), executor=wire.executor or None,
                  report_time=wire.report_time or "",
                  judgement=judgement_from_thrift(wire.judgement))


def history_to_thrift(history: list[Judged]) -> Any:
    return [judged_to_thrift(h) for h in history] or None


def history_from_thrift(history: Any) -> list[Judged]:
    return [judged_from_thrift(h) for h in history or [] if h is not None]


def version_to_thrift(info: VersionInfo) -> Any:
    return T.ProblemVersion(problem=info.problem, version=info.version,
                            spec=file_ref_to_thrift(info.spec), created=info.created,
                            deleting=info.deleting, summary=json.dumps(info.summary))


def version_from_thrift(wire: Any) -> VersionInfo:
    try:
        summary = json.loads(wire.summary or "{}")
    except ValueError:
        summary = {}
    return VersionInfo(problem=wire.problem or "", version=wire.version or 0,
                       spec=file_ref_from_thrift(wire.spec, "spec"), created=wire.created or "",
                       summary=summary if isinstance(summary, dict) else {},
                       deleting=bool(wire.deleting))


def problem_to_thrift(info: ProblemInfo) -> Any:
    return T.Problem(id=info.id, title=info.title, created=info.created,
                     versions=[version_to_thrift(v) for v in info.versions])


def problem_from_thrift(wire: Any) -> ProblemInfo:
    return ProblemInfo(id=wire.id or "", title=wire.title or "", created=wire.created or "",
                       versions=[version_from_thrift(v) for v in wire.versions or []])


def rejudge_to_thrift(r: Rejudge) -> Any:
    return T.Rejudge(id=r.id, problem=r.problem, version=r.version,
                     from_version=r.from_version, user=r.user, verdict=r.verdict,
                     state=r.state, total=r.total, done=r.done, pending=r.pending,
                     created=r.created, detail=r.detail, running=r.running,
                     changes=[T.VerdictChange(before=c.before, after=c.after, tasks=c.tasks)
                              for c in r.changes])


def rejudge_from_thrift(wire: Any) -> Rejudge:
    """InvalidInput for no rejudge or a negative version."""
    if wire is None:
        raise InvalidInput("no rejudge given")
    for name in ("version", "from_version"):
        value = getattr(wire, name)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise InvalidInput(f"{name} must be a version's number")
    return Rejudge(problem=wire.problem or "", version=wire.version or 0,
                   from_version=wire.from_version, user=wire.user, verdict=wire.verdict or None,
                   id=wire.id or "", state=wire.state or "applying", created=wire.created or "",
                   total=wire.total or 0, done=wire.done or 0, pending=wire.pending or 0,
                   detail=wire.detail or "", running=wire.running or 0,
                   changes=[VerdictChange(c.before or "", c.after or "", c.tasks or 0)
                            for c in wire.changes or []])
