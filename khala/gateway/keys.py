"""API keys: the keys file (TOML) the gateway reads and `khala keys` (khala/cli/keys.py) writes.

A key is `khala_<id>_<secret>` (the id names it in lists and revocations; the secret is 256
random bits). The file keeps only the SHA-256 of each whole key, with the user id and role it
acts as — a slow hash buys nothing for random 256-bit secrets. Only `add` ever shows a key.

    [keys.3f9a2b1c]
    sha256 = "…"          # of the whole key
    user = 7              # the user id it acts as
    role = "submit"       # admin | submit | read | setter
    created = "2026-11-22T10:00:00.000000"
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import tomllib
from dataclasses import dataclass

from khala import model
from khala.errors import ConfigError

#: What each role may do (docs/security.md): admin everything; submit submits and sees and
#: controls only its own user's tasks; read reads every task and the executors, changes nothing;
#: setter reads as read does and creates, changes and rejudges problems.
ROLES = ("admin", "submit", "read", "setter")
PREFIX = "khala_"


@dataclass(frozen=True)
class KeyEntry:
    id: str
    sha256: str
    user: int
    role: str
    created: str = ""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: str) -> dict[str, KeyEntry]:
    """The file's keys by id. A missing file holds no keys; a malformed one is a ConfigError."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the keys file {path}: {exc}") from exc
    entries = {}
    for key_id, table in (doc.get("keys") or {}).items():
        try:
            entry = KeyEntry(key_id, str(table["sha256"]), int(table["user"]),
                             str(table["role"]), str(table.get("created", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: key {key_id!r} is malformed: {exc}") from exc
        if entry.role not in ROLES:
            raise ConfigError(f"{path}: key {key_id!r} has unknown role {entry.role!r}")
        entries[key_id] = entry
    return entries


def save_keys(path: str, entries: dict[str, KeyEntry]) -> None:
    """Write the file atomically (a temp file renamed over it), mode 0600."""
    lines = ["# Khala API keys: `khala keys add|list|revoke`. Only hashes are stored.", ""]
    for e in sorted(entries.values(), key=lambda e: e.id):
        lines += [f"[keys.{json.dumps(e.id)}]", f"sha256 = {json.dumps(e.sha256)}",
                  f"user = {e.user}", f"role = {json.dumps(e.role)}",
                  f"created = {json.dumps(e.created)}", ""]
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def add_key(path: str, user: int, role: str) -> tuple[str, KeyEntry]:
    """Create a key; returns (the key, its entry). The key is not stored anywhere."""
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}")
    if not model.valid_int(user):
        raise ConfigError("user must be an integer within 0..2147483647")
    entries = load_keys(path)
    key_id = secrets.token_hex(4)
    while key_id in entries:
        key_id = secrets.token_hex(4)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    entry = KeyEntry(key_id, digest(key), user, role, model.now())
    entries[key_id] = entry
    save_keys(path, entries)
    return key, entry


def revoke_key(path: str, key_id: str) -> bool:
    entries = load_keys(path)
    if entries.pop(key_id, None) is None:
        return False
    save_keys(path, entries)
    return True
