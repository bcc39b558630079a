"""Who a task's processes may run as: the operator's table of host users and groups (settings
`run_users` and `run_groups`, one policy in every node's settings like the limits), the
mapping of Meproc's `user`/`group` names onto it, and the check of a task's `run_uid` and
`run_gid` that the gateway, the judicator and the executor all apply. Pure.

    run_users  = "guest=1001:1001, build=1002"   # name=uid or name=uid:gid (its group)
    run_groups = "guests=1001, builders=1500"    # name=gid

Root is never allowed: an id of 0 in the table is refused when the table is read, and a task
asking uid or gid 0 is refused. A task without ids runs as the sandbox's own user.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from khala.errors import ConfigError, InvalidInput
from khala.model import INT_MAX, Task, judged

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")
SANDBOX_GID = 65534  # the group of a user the table gives none (nogroup)


@dataclass(frozen=True)
class Table:
    users: dict[str, tuple[int, int | None]]  # name → (uid, its group's gid or None)
    groups: dict[str, int]  # name → gid

    def uids(self) -> set[int]:
        return {uid for uid, _ in self.users.values()}

    def gids(self) -> set[int]:
        return {*self.groups.values(), *(g for _, g in self.users.values() if g is not None)}


def _id(text: str, what: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) <= INT_MAX:
        raise ConfigError(f"{what}: {text.strip()!r} is not an id in 1..{INT_MAX} (never 0: "
                          "root)")
    return int(text)


def _entries(text: str, setting: str) -> list[tuple[str, str]]:
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = (x.strip() for x in part.partition("="))
        if not sep or not NAME_RE.match(name):
            raise ConfigError(f"{setting}: {part!r} is not NAME=ID")
        found.append((name, value))
    return found


@functools.lru_cache(maxsize=16)
def parse(run_users: str, run_groups: str) -> Table:
    """The table the two settings give; ConfigError for a malformed one (or an id 0)."""
    users: dict[str, tuple[int, int | None]] = {}
    for name, value in _entries(run_users, "run_users"):
        uid, _, gid = value.partition(":")
        users[name] = (_id(uid, f"run_users {name}"),
                       _id(gid, f"run_users {name}") if gid else None)
    groups = {name: _id(value, f"run_groups {name}")
              for name, value in _entries(run_groups, "run_groups")}
    return Table(users, groups)


def resolve(user: str | None, group: str | None, table: Table) -> tuple[int | None, int | None]:
    """The (run_uid, run_gid) of Meproc's `user` and `group` names; None where none was given
    (a user without a group: its group from the table, else nogroup). InvalidInput naming
    the refused name."""
    uid = gid = None
    if user is not None:
        if user not in table.users:
            raise InvalidInput(f"user {user!r} is not one this cluster runs tasks as (its "
                               "operator's run_users allows: "
                               f"{', '.join(sorted(table.users)) or 'none'})")
        uid, gid = table.users[user]
        gid = SANDBOX_GID if gid is None else gid
    if group is not None:
        if group not in table.groups:
            raise InvalidInput(f"group {group!r} is not one this cluster runs tasks as (its "
                               "operator's run_groups allows: "
                               f"{', '.join(sorted(table.groups)) or 'none'})")
        gid = table.groups[group]
    return uid, gid


def check_task(task: Task, table: Table) -> None:
    """InvalidInput unless the task's run_uid/run_gid are absent or in the table."""
    uid, gid = task.execute.run_uid, task.execute.run_gid
    if (uid is not None or gid is not None) and judged(task):
        raise InvalidInput("a judged task runs as the sandbox's user: run_uid and run_gid "
                           "are for plain tasks")
    for value, allowed, what in ((uid, table.uids(), "run_uid"),
                                 (gid, table.gids() | {SANDBOX_GID}, "run_gid")):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidInput(f"{what} must be a positive id (never 0: root)")
        if value not in allowed:
            raise InvalidInput(f"{what} {value} is not allowed here (settings run_users, "
                               "run_groups)")


def identity_of(task: Task, uid: int, gid: int) -> tuple[int, int] | None:
    """The (uid, gid) a task's steps run as, filling what it leaves out with the sandbox's
    own `uid` and `gid`; None when it asks for neither."""
    e = task.execute
    if e.run_uid is None and e.run_gid is None:
        return None
    return (uid if e.run_uid is None else e.run_uid, gid if e.run_gid is None else e.run_gid)
