"""The pure parts of step options: the checks, the deny routes, the wire and store forms."""

from __future__ import annotations

import ipaddress

import pytest

from khala.config import DEFAULT_NETWORK_DENY, LimitSettings
from khala.errors import ConfigError, InvalidInput
from khala.executor.stepopts import script_from
from khala.model import StepOptions, Task
from khala.rpc.convert.tasks import task_from_thrift, task_to_thrift
from khala.rules.options import check_options, check_task_options, inside_workdir
from khala.sandbox.network import NetworkPolicy, deny_routes, tap_config
from khala.store.codec import spec_from_json, spec_to_json


@pytest.mark.parametrize(("given", "rel"), [("", ""), (".", ""), ("a/b/", "a/b"),
                                            ("/work", ""), ("/work/x/../y", "y"),
                                            ("a/../b", "b")])
def test_working_directories_inside_the_work_area(given: str, rel: str) -> None:
    assert inside_workdir("execute.workdir", given) == rel


@pytest.mark.parametrize("given", ["..", "../x", "/etc", "/work/../etc", "a/../../b", "/",
                                   "/workx", "a\0b"])
def test_working_directories_outside_are_refused(given: str) -> None:
    with pytest.raises(InvalidInput, match="execute.workdir"):
        inside_workdir("execute.workdir", given)


def test_the_steps_script_is_named_from_its_working_directory() -> None:
    assert script_from(["bash", "execute.sh"], "out/deep") == ["bash", "../../execute.sh"]
    assert script_from(["bash", "compile.sh"], "") == ["bash", "compile.sh"]
    assert script_from(["bash", "-c", "pwd"], "src") == ["bash", "-c", "pwd"]
    assert script_from(["bash", "/abs/x.sh"], "src") == ["bash", "/abs/x.sh"]


def test_a_working_directory_is_refused_with_a_language_preset() -> None:
    task = Task()
    task.compile.language = "python3"
    task.execute.options = StepOptions(env={"A": "1"}, workdir="/work", cpu_rate=0.5)
    check_task_options(task, LimitSettings())  # /work itself is the preset's own
    for part in ("compile", "execute"):
        getattr(task, part).options = StepOptions(workdir="src")
        with pytest.raises(InvalidInput, match=f"{part}.workdir: the python3 preset"):
            check_task_options(task, LimitSettings())
        getattr(task, part).options = StepOptions()
    task.compile.language = ""
    task.execute.options = StepOptions(workdir="src")
    check_task_options(task, LimitSettings())


def test_environment_names_and_size_are_checked() -> None:
    policy = LimitSettings(max_env_bytes=20)
    check_options("execute", StepOptions(env={"A_1": "x" * 15}), policy)  # 1+15+2 = 18
    for env, why in (({"1A": "x"}, "not a variable name"), ({"A-B": "x"}, "not a variable"),
                     ({"A": "x" * 18}, "max_env_bytes"), ({"A": "a\0b"}, "without NUL")):
        with pytest.raises(InvalidInput, match=why):
            check_options("execute", StepOptions(env=env), policy)


@pytest.mark.parametrize("rate", [0.0, 0.001, 65.0, float("nan"), float("inf"), True])
def test_cpu_rates_out_of_bounds_are_refused(rate: float) -> None:
    with pytest.raises(InvalidInput, match="execute.cpu_rate"):
        check_options("execute", StepOptions(cpu_rate=rate), LimitSettings())


def test_the_deny_routes_cover_ranges_and_own_addresses_not_loopback() -> None:
    policy = NetworkPolicy.parse(True, DEFAULT_NETWORK_DENY)
    own = [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv4Address("203.0.113.7")]
    lines = deny_routes(policy.deny, own)
    assert "route add unreachable 10.0.0.0/8" in lines
    assert "route add unreachable 192.168.0.0/16" in lines
    assert "route add unreachable 203.0.113.7/32" in lines
    assert not any("127." in line for line in lines)
    assert not any(" lo" in line for line in tap_config() + lines)  # bubblewrap's own
    with pytest.raises(ConfigError, match="network_deny"):
        NetworkPolicy.parse(True, "10.0.0.0/8,not-a-range")


def test_options_cross_the_wire_and_the_store_and_old_tasks_have_none() -> None:
    task = Task(id="a" * 24)
    task.compile.options = StepOptions(env={"CC": "gcc"}, workdir="src")
    task.execute.options = StepOptions(env={"A": "1", "B": ""}, workdir="out", cpu_rate=0.5,
                                       network=True)
    back = task_from_thrift(task_to_thrift(task))
    assert (back.compile.options, back.execute.options) == (task.compile.options,
                                                            task.execute.options)
    compile_part, execute_part, _ = spec_from_json(spec_to_json(task), b"", b"")
    assert (compile_part.options, execute_part.options) == (task.compile.options,
                                                            task.execute.options)
    plain = task_to_thrift(Task(id="b" * 24))
    assert plain.compile.options is None and plain.execute.options is None
    old = '{"compile": {"command": "x"}, "execute": {"command": "y"}}'
    assert spec_from_json(old, b"", b"")[1].options == StepOptions()
