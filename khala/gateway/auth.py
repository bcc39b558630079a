"""API keys at the gateway: who is calling (a key → user id + role) and what they may do.

With `keys_file` set, every API v2 route but the documentation needs a key, sent as
`Authorization: Bearer <key>` or `X-Khala-Key: <key>`: none or an unknown one → 401, a role
the route does not allow → 403. A `submit` key acts as its user only: it submits as that user
(another `user` in the body → 403), lists only that user's tasks, and any other user's task is
"not found" to it (404: no existence leak). `seed_requires_keys` applies the same to the seed
API; Meproc's `/proc` (jobs) needs an admin key whenever keys are on. The keys file is re-read
when it changes (checked on each request: an added or revoked key counts from the next
request).

This module decides and raises, never renders: KeyRefused (401/403) or NotFound (a task the key
may not see), answered by each surface in its own shape (seed, v2, live, Meproc, the app).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from flask import Flask, g, request

from khala.config import GatewaySettings, parse_hostport
from khala.errors import InvalidInput, KhalaError, NotFound
from khala.gateway.finished import FinishedTasks
from khala.gateway.keys import PREFIX, KeyEntry, digest, load_keys
from khala.rpc.auth import is_loopback

log = logging.getLogger(__name__)

ALL = frozenset({"admin", "submit", "read", "setter"})
WRITE = frozenset({"admin", "submit"})
WATCH = frozenset({"admin", "read", "setter"})
ADMIN = frozenset({"admin"})
SETTERS = frozenset({"admin", "setter"})  # problems: create, change, delete, rejudge

#: Roles allowed per endpoint (blueprint.view), whenever keys are on. Endpoints not listed are
#: open (docs, pages, liveness), except those of KEYED_BLUEPRINTS: admins only.
V2_POLICY: dict[str, frozenset[str]] = {
    "v2.create": WRITE, "v2.create_with_id": WRITE, "v2.batch": WRITE,
    "v2.list": ALL, "v2.get": ALL, "v2.output": ALL, "v2.files": ALL, "v2.cases": ALL,
    "v2.languages": ALL, "v2.limits": ALL,
    "v2.cancel": WRITE, "v2.signal": WRITE, "v2.delete": WRITE,
    "v2.executors": WATCH, "v2.executor": WATCH, "metrics": WATCH,
    # Live output (docs/streaming.md) reads a task as GET does; pow-1's own calls then check
    # what the key may do: submit (write keys, as their user), cancel (write keys), attach.
    "live.events": ALL, "live.pow": ALL, "live.pow_http": ALL,
    # Jobs (docs/jobs.md) run tasks for any user, on schedules: admin keys only write them.
    "v2.job_create": ADMIN, "v2.job_restart": ADMIN, "v2.job_delete": ADMIN,
    "v2.job_list": WATCH, "v2.job_get": WATCH, "v2.job_stop": ADMIN,
    # Problems (docs/judging.md): any key reads them (a submit key submits against them).
    "v2.problem_list": ALL, "v2.problem_get": ALL, "v2.version_get": ALL,
    "v2.problem_create": SETTERS, "v2.problem_delete": SETTERS, "v2.version_create": SETTERS,
    "v2.version_delete": SETTERS, "v2.file_put": SETTERS, "v2.file_head": SETTERS,
    "v2.rejudge_create": SETTERS, "v2.rejudge_list": ALL, "v2.rejudge_get": ALL,
    # Images (docs/images.md): any key sees which exist; admin keys import and delete them.
    "v2.image_list": ALL, "v2.image_import": ADMIN, "v2.image_delete": ADMIN,
    # The neighbouring seeds' APIs (docs/procstar.md, streaming.md, meproc.md): the same keys.
    "procstar.list": ALL, "procstar.get": ALL, "procstar.fd": ALL, "procstar.fd_out": ALL,
    "procstar.create": WRITE, "procstar.create_with_id": WRITE, "procstar.delete": WRITE,
    "procstar.signal": WRITE,
    "pow.new": WRITE, "pow.status": ALL, "pow.input": WRITE, "pow.close_input": WRITE,
    "pow.cancel": WRITE,
    # Meproc's /proc runs processes as the host users of the operator's table: admin keys
    "meproc.proc": ADMIN,
    # Duxcore's services are jobs (admin keys write them) and import images (admin keys);
    # the keys that watch jobs read them (docs/duxcore.md).
    "duxcore.create": ADMIN, "duxcore.ctl": ADMIN, "duxcore.delete": ADMIN,
    "duxcore.env": ADMIN, "duxcore.bind": ADMIN, "duxcore.image": ADMIN,
    "duxcore.get": WATCH, "duxcore.stats": WATCH,
}
#: The blueprints behind API keys; their endpoints not in V2_POLICY need admin, but V2_OPEN.
KEYED_BLUEPRINTS = frozenset({"v2", "live", "procstar", "pow", "meproc", "duxcore"})
V2_OPEN = frozenset({"v2.openapi", "v2.docs", "v2.docs_asset"})
#: The seed API, with `seed_requires_keys` only (the website calls it without a key).
SEED_POLICY: dict[str, frozenset[str]] = {
    "seed.add": WRITE, "seed.cancel": WRITE, "seed.get": ALL, "seed.search": ALL,
    "seed.executors": ALL, "seed.judicators": ALL,
}
#: Endpoints whose task (path `id`, or query `id` on the seed API) a submit key must own.
OWNED = frozenset({"v2.get", "v2.output", "v2.files", "v2.cases", "live.events", "v2.cancel",
                   "v2.signal", "v2.delete", "seed.get", "seed.cancel", "pow.status",
                   "pow.input", "pow.close_input", "pow.cancel"})


CORE_KEY = "X-Duxcore-CoreKey"


def core_key(header: str) -> str:
    """The key a Duxcore core key header carries ("" when it is not base64 of UTF-8 text:
    an unknown key)."""
    try:
        return base64.b64decode(header.strip(), validate=True).decode().strip()
    except (binascii.Error, ValueError):
        return ""


class KeyRefused(KhalaError):
    """The request's key does not allow it: 401 (no key, or an unknown one; `headers` ask for
    one), 403 (its role, or its user, may not). The seed API answers it as result 4."""

    code = InvalidInput.code

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.http_status = status
        self.headers = {"WWW-Authenticate": 'Bearer realm="khala"'} if status == 401 else {}


@dataclass(frozen=True)
class Principal:
    key_id: str
    user: int
    role: str


class KeyRing:
    """The keys of one file by hash, re-read when the file changes (`khala keys` replaces
    it: a new inode; a hand edit changes its mtime or size)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._version: tuple[int, int, int] | None = None  # inode, mtime, size
        self._by_hash: dict[str, KeyEntry] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
            version: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            version = None
        if version != self._version or version is None:
            entries = load_keys(self.path)
            self._by_hash = {e.sha256: e for e in entries.values()}
            self._version = version

    def lookup(self, key: str) -> Principal | None:
        """The key's principal. The file is checked on every call (one stat), so an
        added or revoked key counts from the next request."""
        with self._lock:
            try:
                self._reload()
            except Exception:  # an unreadable file: keep the last good keys
                log.warning("keys file %s unreadable; keeping the last keys", self.path,
                            exc_info=True)
            entry = self._by_hash.get(digest(key))
        return None if entry is None else Principal(entry.id, entry.user, entry.role)


def presented_key() -> str | None:
    """The request's key: `Authorization: Bearer`, `X-Khala-Key`, or on the Duxcore routes
    `X-Duxcore-CoreKey`, the key in base64 (Duxcore's core key file holds the key's bytes)."""
    if request.blueprint == "duxcore" and CORE_KEY in request.headers:
        return core_key(request.headers[CORE_KEY])
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-Khala-Key") or None


def principal() -> Principal | None:
    """Who calls this request (None: keys are off, or the route is open)."""
    return g.get("khala_principal")


def claim_user(user: int, given: bool) -> int:
    """The user a submission acts as: a submit key's own (another one given → 403)."""
    who = principal()
    if who is None or who.role != "submit":
        return user
    if given and user != who.user:
        raise KeyRefused(403, f"this key submits as user {who.user} only")
    return who.user


def may_see(user: int) -> bool:
    """Whether the caller may see a task of `user` (a submit key sees its own user's only)."""
    who = principal()
    return who is None or who.role != "submit" or who.user == user


def list_user(user: int | None) -> int | None:
    """The user filter of a list: a submit key lists its own user's tasks only."""
    who = principal()
    if who is None or who.role != "submit":
        return user
    if user is not None and user != who.user:
        raise KeyRefused(403, f"this key lists the tasks of user {who.user} only")
    return who.user


def _check(keys: KeyRing, roles: frozenset[str], client: Any, finished: FinishedTasks) -> None:
    key = presented_key()
    if key is None:
        where = (f"{CORE_KEY}: the key in base64" if request.blueprint == "duxcore"
                 else "Authorization: Bearer <key> or X-Khala-Key")
        raise KeyRefused(401, f"an API key is required ({where})")
    who = keys.lookup(key) if key.startswith(PREFIX) else None
    if who is None:
        raise KeyRefused(401, "unknown API key")
    if who.role not in roles:
        raise KeyRefused(403, f"a {who.role} key may not {request.method} {request.path}")
    g.khala_principal = who
    if who.role == "submit" and request.endpoint in OWNED:
        ref = (request.view_args or {}).get("id") or request.args.get("id")
        if ref and _owner(client, finished, ref) not in (None, who.user):
            raise NotFound(f"no task {ref!r}")  # its existence is not told either


def _owner(client: Any, finished: FinishedTasks, ref: str) -> int | None:
    """The user of the task `ref` names; None when there is none (the route answers that).
    A task's user never changes: a finished task read lately answers it from memory."""
    try:
        return int(finished.read(ref, client.find).user)
    except Exception:  # none, a malformed ref or an unreachable judicator: the view answers it
        return None


def register_auth(app: Flask, settings: GatewaySettings, client: Any,
                  finished: FinishedTasks) -> None:
    """Check keys before every request when `keys_file` is set (register before the routes'
    own before_request hooks run: it is a plain before_request)."""
    if not settings.keys_file:
        return
    keys = KeyRing(settings.keys_file)
    policy = dict(V2_POLICY)
    if settings.seed_requires_keys:
        policy.update(SEED_POLICY)

    def check() -> None:
        endpoint = request.endpoint or ""
        roles = policy.get(endpoint)
        if roles is None and request.blueprint in KEYED_BLUEPRINTS and endpoint not in V2_OPEN:
            roles = ADMIN  # a keyed route this table does not know yet: admins only
        if roles is not None:
            _check(keys, roles, client, finished)

    app.before_request(check)


def warn_if_open(settings: GatewaySettings) -> None:
    """The loud warning of a gateway that anyone on the network may use."""
    host, _ = parse_hostport(settings.listen)
    if settings.keys_file or is_loopback(host):
        return
    bar = "!" * 78
    log.warning("%s\nTHE GATEWAY LISTENS ON %s WITHOUT API KEYS: anyone who reaches it can "
                "submit, read and cancel every task.\nSet keys_file (`khala keys add`, "
                "docs/security.md).\n%s", bar, settings.listen, bar)
