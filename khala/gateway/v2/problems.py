"""API v2 problems (docs/api-v2.md, "Problems"): the models and the views — problems and their
versions (a package upload, or a spec document whose files were PUT one by one), stored files,
rejudges. Request bodies of packages and files are streamed to a temporary file, never held in
memory; each view is then judicator calls (khala/rpc/client.py)."""

from __future__ import annotations

import contextlib
import hashlib
from typing import IO, Any, Literal

from flask import Response, jsonify, request
from pydantic import BaseModel, Field

from khala.config import GatewaySettings
from khala.errors import InvalidInput, NotFound
from khala.files.refs import CHUNK, FileRef, check_digest
from khala.files.transfer import receive, send_chunks
from khala.gateway.v2 import parse
from khala.gateway.v2.bodies import spooled_body
from khala.gateway.v2.errors import ApiError
from khala.model import INT_MAX, VERDICT_TEXTS
from khala.problems.model import MAX_TITLE, PROBLEM_ID_PATTERN, ProblemInfo, Rejudge, VersionInfo
from khala.problems.spec import MAX_SPEC_BYTES, spec_from_bytes
from khala.problems.upload import FORMATS, upload_package
from khala.rpc.client import JudicatorClient
from khala.taskjson.base import Strict

# ----------------------------------------------------------------------------- models


class ProblemIn(Strict):
    id: str = Field(pattern=PROBLEM_ID_PATTERN, examples=["aplusb"])
    title: str = Field("", max_length=MAX_TITLE)


class VersionOut(BaseModel):
    version: int
    created: str
    spec: str = Field(description="sha256 of the version's spec document")
    deleting: bool
    cases: int
    bytes: int = Field(description="bytes of its files (tests, jury programs, extra files)")
    limits: dict[str, Any] = Field(description="time (CPU s), memory, output (bytes), wall, "
                                   "time_factors")
    checker: str | None = Field(description="the checker's language")
    interactor: str | None = Field(description="the interactor's language")
    groups: list[dict[str, Any]] = Field(description="name, points, policy, deps, cases")
    files: list[str] = Field(description="extra files, in every build and every run's data/")
    origin: str = Field(description="the package format: khala or polygon")
    notes: list[str] = Field(description="what the import left out")


class ProblemOut(BaseModel):
    id: str
    title: str
    created: str
    latest: int | None = Field(description="the version a task asking none is judged against")
    versions: list[VersionOut]


class ProblemEnvelope(BaseModel):
    data: ProblemOut


class ProblemList(BaseModel):
    data: list[ProblemOut]


class CaseOut(BaseModel):
    name: str
    group: str
    weight: int
    input: int = Field(description="bytes")
    answer: int = Field(description="bytes")


class VersionDetail(VersionOut):
    problem: str
    title: str
    case_list: list[CaseOut]


class VersionEnvelope(BaseModel):
    data: VersionDetail


class VersionCreated(BaseModel):
    data: ProblemOut
    version: int
    notes: list[str]


class FileEnvelope(BaseModel):
    data: dict[str, Any] = Field(examples=[{"sha256": "…", "size": 12}])


class RejudgeIn(Strict):
    version: int = Field(0, ge=0, le=INT_MAX, description="judge against; 0 = the latest")
    from_version: int | None = Field(None, ge=1, le=INT_MAX,
                                     description="only tasks judged against this version")
    user: int | None = Field(None, ge=0, le=INT_MAX, description="only this user's tasks")
    verdict: Literal[tuple(sorted(VERDICT_TEXTS))] | None = Field(  # type: ignore[valid-type]
        None, description="only tasks with this verdict")


class VerdictChangeOut(BaseModel):
    before: str = Field(description="the verdict before the rejudge (\"\" for none)")
    after: str = Field(description="the verdict it has now")
    tasks: int


class RejudgeOut(BaseModel):
    id: str
    problem: str
    version: int
    from_version: int | None
    user: int | None
    verdict: str | None
    state: str = Field(description="applying (queueing tasks), running, done, failed")
    total: int = Field(description="tasks queued again")
    done: int = Field(description="of them judged again")
    pending: int = Field(description="of them not yet")
    running: int = Field(description="of the pending, being judged now (the rest are queued)")
    changes: list[VerdictChangeOut] = Field(
        description="the done tasks whose verdict moved, per (before, after)")
    created: str
    detail: str


class RejudgeEnvelope(BaseModel):
    data: RejudgeOut


class RejudgeList(BaseModel):
    data: list[RejudgeOut]


class PackageQuery(BaseModel):
    format: Literal[tuple(FORMATS)] = Field(  # type: ignore[valid-type]
        "auto", description="the package's layout: auto (problem.toml or problem.xml), "
        "khala, polygon")


# ----------------------------------------------------------------------------- answers


def version_out(info: VersionInfo) -> VersionOut:
    s = info.summary
    return VersionOut(version=info.version, created=info.created, spec=info.spec.sha256,
                      deleting=info.deleting, cases=int(s.get("cases", 0)),
                      bytes=int(s.get("bytes", 0)), limits=dict(s.get("limits") or {}),
                      checker=s.get("checker"), interactor=s.get("interactor"),
                      groups=list(s.get("groups") or []), files=list(s.get("files") or []),
                      origin=str(s.get("origin", "khala")), notes=list(s.get("notes") or []))


def problem_out(info: ProblemInfo) -> dict[str, Any]:
    latest = info.latest
    return ProblemOut(id=info.id, title=info.title, created=info.created,
                      latest=latest.version if latest else None,
                      versions=[version_out(v) for v in info.versions]).model_dump(mode="json")


def rejudge_out(r: Rejudge) -> dict[str, Any]:
    return RejudgeOut(id=r.id, problem=r.problem, version=r.version,
                      from_version=r.from_version, user=r.user, verdict=r.verdict,
                      state=r.state, total=r.total, done=r.done, pending=r.pending,
                      running=r.running, created=r.created, detail=r.detail,
                      changes=[VerdictChangeOut(before=c.before, after=c.after, tasks=c.tasks)
                               for c in r.changes]).model_dump(mode="json")


# ----------------------------------------------------------------------------- views


class ProblemViews:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient) -> None:
        self.settings = settings
        self.client = client

    def _body_file(self) -> contextlib.AbstractContextManager[IO[bytes]]:
        return spooled_body(self.settings.max_package_size, "max_package_size", "")

    def problem_list(self) -> Response:
        return jsonify({"data": [problem_out(p) for p in self.client.problem_list()]})

    def problem_create(self) -> Response:
        body = parse.validate(ProblemIn, parse.json_body(), from_json=True)
        response = jsonify({"data": problem_out(self.client.problem_create(body.id,
                                                                           body.title))})
        response.status_code = 201
        response.headers["Location"] = f"/api/v2/problems/{body.id}"
        return response

    def problem_get(self, id: str) -> Response:  # noqa: A002 - route name
        return jsonify({"data": problem_out(self.client.problem_get(id))})

    def problem_delete(self, id: str) -> Response:  # noqa: A002
        self.client.problem_delete(id, 0)
        return Response(status=204)

    def version_create(self, id: str) -> Response:  # noqa: A002
        """A package (a zip body) or a spec document (a JSON body) as a new version."""
        if request.mimetype == "application/json":
            number, notes = self._from_spec(id)
        else:
            query = parse.validate(PackageQuery, request.args.to_dict())
            with self._body_file() as fh:
                number, spec = upload_package(self.client, fh, id, query.format,
                                              self.settings.max_package_size,
                                              self.settings.zip_max_files)
            notes = spec.notes
        response = jsonify({"data": problem_out(self.client.problem_get(id)),
                            "version": number, "notes": notes})
        response.status_code = 201
        response.headers["Location"] = f"/api/v2/problems/{id}/versions/{number}"
        return response

    def _from_spec(self, problem: str) -> tuple[int, list[str]]:
        request.max_content_length = MAX_SPEC_BYTES
        document = request.get_data(cache=False)
        spec = spec_from_bytes(document)  # refused here already when it is no spec
        number, _ = self.client.problem_version_add(problem, document)
        return number, spec.notes

    def version_get(self, id: str, version: int) -> Response:  # noqa: A002
        info = self.client.problem_get(id)
        found = next((v for v in info.versions if v.version == version), None)
        if found is None:
            raise NotFound(f"problem {id!r} has no version {version}")
        parts: list[bytes] = []
        receive(self.client, found.spec, parts.append)
        spec = spec_from_bytes(b"".join(parts))
        detail = VersionDetail(
            **version_out(found).model_dump(), problem=id, title=spec.title,
            case_list=[CaseOut(name=c.name, group=c.group, weight=c.weight,
                               input=c.input.size, answer=c.answer.size) for c in spec.cases])
        return jsonify({"data": detail.model_dump(mode="json")})

    def version_delete(self, id: str, version: int) -> Response:  # noqa: A002
        if not 1 <= version <= INT_MAX:  # none is numbered beyond what the wire holds
            raise ApiError(404, f"problem {id!r} has no version {version}")
        self.client.problem_delete(id, version)
        return Response(status=204)

    def file_head(self, sha256: str) -> Response:
        """200 when the store has the file, else 404: a client asks before it uploads."""
        check_digest(sha256)
        try:
            self.client.file_read(sha256, 0, 0)
        except NotFound:
            return Response(status=404)
        return Response(status=200)

    def file_put(self, sha256: str) -> Response:
        check_digest(sha256)
        with self._body_file() as fh:
            hasher, size = hashlib.sha256(), 0
            while chunk := fh.read(CHUNK):
                hasher.update(chunk)
                size += len(chunk)
            if hasher.hexdigest() != sha256:
                raise InvalidInput(f"the body's sha256 is {hasher.hexdigest()}, not {sha256}")
            fh.seek(0)
            sent = send_chunks(self.client, FileRef(sha256, size),
                               iter(lambda: fh.read(CHUNK), b""))
        response = jsonify({"data": {"sha256": sha256, "size": size}})
        response.status_code = 201 if sent else 200
        return response

    def rejudge_create(self, id: str) -> Response:  # noqa: A002
        body = parse.validate(RejudgeIn, parse.json_body(), from_json=True)
        made = self.client.rejudge(Rejudge(problem=id, version=body.version,
                                           from_version=body.from_version, user=body.user,
                                           verdict=body.verdict))
        response = jsonify({"data": rejudge_out(made)})
        response.status_code = 202
        response.headers["Location"] = f"/api/v2/rejudges/{made.id}"
        return response

    def rejudge_list(self, id: str) -> Response:  # noqa: A002
        return jsonify({"data": [rejudge_out(r) for r in self.client.rejudges(problem=id)]})

    def rejudge_get(self, rid: str) -> Response:
        found = self.client.rejudges(id=rid)
        if not found:
            raise NotFound(f"no rejudge {rid!r}")
        return jsonify({"data": rejudge_out(found[0])})
