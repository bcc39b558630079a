"""`khala problem push|list|show|rejudge|delete`: problems through API v2, for setters.

`push DIR` reads the package in DIR (Khala's layout with problem.toml, or a Polygon package's
problem.xml) here, asks the gateway which of its files the store lacks (HEAD /api/v2/files/…),
sends only those (PUT, each streamed from the package) and adds the version as its spec
document: pushing a package again after changing one test sends that test and the spec.
Talks to --url or $KHALA_URL with $KHALA_KEY as the API key. Exit codes: 0 done, 2 usage or
a package that cannot be read, 3 the API answered an error, 4 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
import zipfile
from typing import Any

from khala.errors import InvalidInput
from khala.problems.package import open_package
from khala.problems.spec import spec_bytes
from khala.problems.upload import FORMATS, read_package

DEFAULT_URL = "http://127.0.0.1:7000"
EXIT_OK, EXIT_USAGE, EXIT_API, EXIT_UNREACHABLE = 0, 2, 3, 4
MAX_PACKAGE = 1 << 40  # what this side reads; the gateway has its own bound
MAX_FILES = 100_000


class ApiFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _headers(content_type: str = "application/json", length: int | None = None
             ) -> dict[str, str]:
    headers = {"Content-Type": content_type}
    if length is not None:
        headers["Content-Length"] = str(length)
    if os.environ.get("KHALA_KEY"):
        headers["Authorization"] = "Bearer " + os.environ["KHALA_KEY"]
    return headers


def send(base: str, method: str, path: str, data: Any = None,
         headers: dict[str, str] | None = None, missing_ok: bool = False) -> tuple[int, Any]:
    """(status, the JSON answer or None). `data`: bytes or an iterable of bytes."""
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method,
                                 headers=headers or _headers())
    try:
        with urllib.request.urlopen(req, timeout=600) as reply:  # noqa: S310 - user's URL
            raw = reply.read()
            return reply.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        if missing_ok and exc.code == 404:
            return 404, None
        raw = exc.read()
        try:
            text = "; ".join(f"{e['title']}: {e['detail']}" for e in json.loads(raw)["errors"])
        except (ValueError, KeyError, TypeError):
            text = raw.decode(errors="replace")[:500]
        raise ApiFailure(EXIT_API, f"HTTP {exc.code}: {text}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ApiFailure(EXIT_UNREACHABLE, f"cannot reach {base}: {exc}") from exc


def zip_tree(root: str, fh: Any) -> None:
    """The files under `root` into a zip (stored, not compressed: read once to hash, once to
    send), a file at a time."""
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(folder, name)
                archive.write(path, os.path.relpath(path, root))


def push(base: str, directory: str, problem: str, layout: str) -> tuple[int, int, int, int]:
    """(the new version, files sent, bytes sent, files in the version)."""
    with tempfile.TemporaryFile(prefix="khala-push-") as fh:
        zip_tree(directory, fh)
        fh.seek(0)
        pkg = open_package(fh, MAX_PACKAGE, MAX_FILES)
        spec = read_package(pkg, problem, layout)
        members = {r.sha256: name for name, r in pkg.refs.items()}
        sent = sent_bytes = 0
        for ref in spec.refs():
            status, _ = send(base, "HEAD", f"/api/v2/files/{ref.sha256}", missing_ok=True)
            if status == 200:
                continue
            send(base, "PUT", f"/api/v2/files/{ref.sha256}",
                 data=pkg.chunks(members[ref.sha256]),
                 headers=_headers("application/octet-stream", ref.size))
            sent, sent_bytes = sent + 1, sent_bytes + ref.size
        _, answer = send(base, "POST", f"/api/v2/problems/{problem}/versions",
                         data=spec_bytes(spec))
        return int(answer["version"]), sent, sent_bytes, len(spec.refs())


def _problem_id(directory: str, given: str | None) -> str:
    if given:
        return given
    toml = os.path.join(directory, "problem.toml")
    if os.path.exists(toml):
        with open(toml, "rb") as fh:
            found = tomllib.load(fh).get("id")
        if found:
            return str(found)
    return os.path.basename(os.path.abspath(directory))


def build(sub: Any) -> None:
    cmd = sub.add_parser("problem", help="problems: push a package, list, show, rejudge",
                         description=__doc__.split("\n\n")[0] if __doc__ else None)
    cmd.add_argument("--url", default=os.environ.get("KHALA_URL", DEFAULT_URL))
    verbs = cmd.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("push", help="store the package in DIR as a new version")
    p.add_argument("directory")
    p.add_argument("--id", default=None, help="the problem's id (default: problem.toml's `id`, "
                   "else the directory's name)")
    p.add_argument("--format", choices=FORMATS, default="auto")
    verbs.add_parser("list", help="every problem with its latest version")
    s = verbs.add_parser("show", help="one problem and its versions (JSON)")
    s.add_argument("id")
    r = verbs.add_parser("rejudge", help="judge the problem's tasks again")
    r.add_argument("id")
    r.add_argument("--version", type=int, default=0, help="judge against (default: latest)")
    r.add_argument("--from-version", type=int, default=None)
    r.add_argument("--user", type=int, default=None)
    r.add_argument("--verdict", default=None)
    d = verbs.add_parser("delete", help="delete a version (or, with no --version, the problem)")
    d.add_argument("id")
    d.add_argument("--version", type=int, default=0)


def _list(base: str) -> None:
    _, answer = send(base, "GET", "/api/v2/problems")
    print(f"{'id':20} {'latest':>6} {'cases':>6} {'bytes':>12}  title")
    for p in answer["data"]:
        latest = next((v for v in p["versions"] if v["version"] == p["latest"]), None)
        cases, size = (latest["cases"], latest["bytes"]) if latest else (0, 0)
        print(f"{p['id']:20} {p['latest'] or '-':>6} {cases:>6} {size:>12}  {p['title']}")


def run(args: argparse.Namespace) -> int:
    base = args.url
    try:
        if args.verb == "push":
            problem = _problem_id(args.directory, args.id)
            version, sent, size, total = push(base, args.directory, problem, args.format)
            print(f"{problem} version {version}: sent {sent} of {total} files ({size} bytes)")
        elif args.verb == "list":
            _list(base)
        elif args.verb == "show":
            print(json.dumps(send(base, "GET", f"/api/v2/problems/{args.id}")[1]["data"],
                             indent=2))
        elif args.verb == "rejudge":
            body = {k: v for k, v in (("version", args.version),
                                       ("from_version", args.from_version),
                                       ("user", args.user), ("verdict", args.verdict))
                    if v is not None}
            _, answer = send(base, "POST", f"/api/v2/problems/{args.id}/rejudges",
                             data=json.dumps(body).encode())
            print(json.dumps(answer["data"], indent=2))
        else:
            path = f"/api/v2/problems/{args.id}"
            send(base, "DELETE", f"{path}/versions/{args.version}" if args.version else path)
    except (InvalidInput, OSError) as exc:
        print(f"khala problem: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiFailure as exc:
        print(f"khala problem: {exc}", file=sys.stderr)
        return exc.code
    return EXIT_OK
