"""The operator's table of host users and groups tasks may run as (khala/rules/identity.py):
reading it, mapping Meproc's names onto it, and the check every node applies. Pure."""

from __future__ import annotations

import pytest

from khala.config import ExecutorSettings, GatewaySettings, JudicatorSettings
from khala.errors import ConfigError, InvalidInput
from khala.model import Compile, Execute, Task
from khala.rules import identity
from khala.rules.limits import validate_task

TABLE = identity.parse("guest=1234:1235, build=1300", "guests=1235, builders=1500")


def test_the_table() -> None:
    assert TABLE.users == {"guest": (1234, 1235), "build": (1300, None)}
    assert TABLE.groups == {"guests": 1235, "builders": 1500}
    assert TABLE.uids() == {1234, 1300} and TABLE.gids() == {1235, 1500}
    assert identity.parse("", "") == identity.Table({}, {})


@pytest.mark.parametrize(("users", "groups", "words"), [
    ("root=0", "", "never 0: root"), ("x=1:0", "", "never 0"), ("", "wheel=0", "never 0"),
    ("guest", "", "is not NAME=ID"), ("1x=5", "", "is not NAME=ID"), ("a=b", "", "'b'"),
    ("a=-1", "", "'-1'"),
])
def test_a_bad_table_stops_a_node(users: str, groups: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        identity.parse(users, groups)
    for cls in (GatewaySettings, JudicatorSettings, ExecutorSettings):
        with pytest.raises(ConfigError):
            cls(run_users=users, run_groups=groups)


@pytest.mark.parametrize(("user", "group", "ids"), [
    ("guest", None, (1234, 1235)), ("build", None, (1300, 65534)),
    ("guest", "builders", (1234, 1500)), (None, "guests", (None, 1235)), (None, None, (None, None)),
])
def test_names_map_onto_the_table(user: str | None, group: str | None,
                                  ids: tuple[int | None, int | None]) -> None:
    assert identity.resolve(user, group, TABLE) == ids


def test_names_not_in_the_table_are_refused_with_the_allowed_ones() -> None:
    with pytest.raises(InvalidInput, match=r"user 'root' .* allows: build, guest\)"):
        identity.resolve("root", None, TABLE)
    with pytest.raises(InvalidInput, match=r"group 'wheel' .* allows: builders, guests\)"):
        identity.resolve("guest", "wheel", TABLE)
    with pytest.raises(InvalidInput, match="allows: none"):
        identity.resolve("guest", None, identity.parse("", ""))


def task(**execute: object) -> Task:
    return Task(compile=Compile(command="true"),
                execute=Execute(command="id", **execute))  # type: ignore[arg-type]


@pytest.mark.parametrize(("asked", "words"), [
    ({"run_uid": 4321}, "run_uid 4321 is not allowed here"),
    ({"run_gid": 99}, "run_gid 99 is not allowed here"),
    ({"run_uid": 0}, "never 0"), ({"run_gid": 0}, "never 0"), ({"run_uid": -5}, "never 0"),
    ({"run_uid": 1234, "cases": [{}]}, "judged task runs as the sandbox's user"),
])
def test_the_check_every_node_applies(asked: dict[str, object], words: str) -> None:
    from khala.model import Case

    if "cases" in asked:
        asked = {**asked, "cases": [Case()]}
    with pytest.raises(InvalidInput, match=words):
        identity.check_task(task(**asked), TABLE)
    policy = JudicatorSettings(run_users="guest=1234:1235", run_groups="guests=1235")
    with pytest.raises(InvalidInput):
        validate_task(task(**asked), policy)


def test_allowed_ids_pass_and_fill_in() -> None:
    for asked in ({}, {"run_uid": 1234}, {"run_uid": 1300, "run_gid": 1500},
                  {"run_gid": 65534}, {"run_gid": 1235}):
        identity.check_task(task(**asked), TABLE)
    assert identity.identity_of(task(), 65534, 65534) is None
    assert identity.identity_of(task(run_uid=1234), 65534, 65534) == (1234, 65534)
    assert identity.identity_of(task(run_gid=1500), 65534, 65534) == (65534, 1500)
