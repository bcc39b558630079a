"""Storing a problem package (a zip file on disk) as a new version: read its layout (Khala's
problem.toml, or Polygon's problem.xml), send each file the store lacks a chunk at a time
(khala/files/transfer.py), then add the version as its spec document. Nothing is held whole in
memory: a member is hashed from the archive, then sent from it."""

from __future__ import annotations

from typing import IO, Protocol

from khala.errors import InvalidInput
from khala.files.transfer import FileCalls, send_chunks
from khala.problems.model import ProblemInfo, VersionSpec
from khala.problems.package import Package, open_package, read_khala
from khala.problems.polygon import read_polygon
from khala.problems.spec import spec_bytes

FORMATS = ("auto", "khala", "polygon")


class ProblemCalls(FileCalls, Protocol):
    def problem_version_add(self, problem: str, spec: bytes) -> tuple[int, ProblemInfo]: ...


def read_package(pkg: Package, problem: str, layout: str = "auto") -> VersionSpec:
    """The version a package describes, in the layout asked (auto: problem.toml → Khala's,
    problem.xml → Polygon's). InvalidInput when it has neither or is not what it claims."""
    if layout not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}")
    if layout == "auto":
        layout = ("khala" if pkg.has("problem.toml")
                  else "polygon" if pkg.has("problem.xml") else "")
    if layout == "khala" and pkg.has("problem.toml"):
        return read_khala(pkg, problem)
    if layout == "polygon" and pkg.has("problem.xml"):
        return read_polygon(pkg, problem)
    raise InvalidInput("a problem package holds problem.toml (Khala's layout) or problem.xml "
                       "(a Polygon package) at its top")


def send_package_files(client: FileCalls, pkg: Package, spec: VersionSpec) -> int:
    """Send the files of `spec` the store lacks, from the package; returns how many were
    sent."""
    members: dict[str, str] = {}
    for name, ref in pkg.refs.items():
        members.setdefault(ref.sha256, name)
    sent = 0
    for ref in spec.refs():
        member = members.get(ref.sha256)
        if member is None:
            raise InvalidInput(f"file {ref.sha256} of the spec is not in the package")
        if send_chunks(client, ref, pkg.chunks(member)):
            sent += 1
    return sent


def upload_package(client: ProblemCalls, fh: IO[bytes], problem: str, layout: str,
                   max_bytes: int, max_files: int) -> tuple[int, VersionSpec]:
    """Store the package in `fh` as a new version of `problem`: (its number, its spec)."""
    pkg = open_package(fh, max_bytes, max_files)
    spec = read_package(pkg, problem, layout)
    send_package_files(client, pkg, spec)
    number, _ = client.problem_version_add(problem, spec_bytes(spec))
    return number, spec
