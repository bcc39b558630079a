"""Settings layering and the pure helpers of the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from khala import model
from khala.cli.main import build_parser
from khala.config import (
    ExecutorSettings,
    GatewaySettings,
    JudicatorSettings,
    load,
    parse_hostport,
)
from khala.errors import ConfigError


def test_layers_defaults_file_env_flags(tmp_path: Path) -> None:
    path = tmp_path / "khala.toml"
    path.write_text('[common]\nprefix = "/p"\n[judicator]\nlisten = "0.0.0.0:5000"\nttl = 7\n')
    s = load(JudicatorSettings, "judicator", config_file=str(path), env={})
    assert (s.listen, s.ttl, s.prefix, s.expiry) == ("0.0.0.0:5000", 7, "/p", 10.0)
    s = load(JudicatorSettings, "judicator", config_file=str(path), env={"KHALA_TTL": "3"})
    assert s.ttl == 3
    s = load(
        JudicatorSettings,
        "judicator",
        config_file=str(path),
        env={"KHALA_TTL": "3"},
        flags={"ttl": "4", "listen": None},
    )
    assert (s.ttl, s.listen) == (4, "0.0.0.0:5000")


def test_config_file_from_env_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "k.toml"
    path.write_text("[executor]\nslots = 3\n")
    s = load(ExecutorSettings, "executor", env={"KHALA_CONFIG": str(path)})
    assert s.resolved_slots() == 3
    path.write_text("[executor]\nslotz = 3\n")
    with pytest.raises(ConfigError, match="slotz"):
        load(ExecutorSettings, "executor", config_file=str(path), env={})
    with pytest.raises(ConfigError, match="slots"):
        load(ExecutorSettings, "executor", env={"KHALA_SLOTS": "many"})
    with pytest.raises(ConfigError):
        load(ExecutorSettings, "executor", config_file=str(tmp_path / "missing.toml"), env={})


def test_every_setting_is_a_flag() -> None:
    args = build_parser().parse_args(["executor", "--slots", "2", "--work-dir", "/w"])
    assert (args.slots, args.work_dir, args.heartbeat) == ("2", "/w", None)


def test_hostport() -> None:
    assert parse_hostport("127.0.0.1:80") == ("127.0.0.1", 80)
    assert parse_hostport("[::1]:7") == ("::1", 7)
    for bad in ("nohost", ":80", "h:x", "h:70000"):
        with pytest.raises(ConfigError):
            parse_hostport(bad)


def test_ids_ints_times_pages() -> None:
    assert model.valid_id(model.new_id())
    ids = [model.new_id() for _ in range(1000)]
    # random: no shared ObjectId time + process prefix, no counter, no order
    assert len({i[:18] for i in ids}) == 1000 and ids != sorted(ids)
    assert not model.valid_id("ABCDEF0123456789abcdef01")
    assert not model.valid_id("0" * 23)
    assert model.valid_int(0) and model.valid_int(model.INT_MAX)
    assert not model.valid_int(-1) and not model.valid_int(model.INT_MAX + 1)
    assert not model.valid_int(True)
    assert model.canonical_time("2020-01-01T00:00:00") == "2020-01-01T00:00:00.000000"
    assert model.canonical_time("2020-01-01T08:00:00+08:00") == "2020-01-01T00:00:00.000000"
    with pytest.raises(ValueError):
        model.canonical_time("yesterday")
    assert [model.page_count(n, lim) for n, lim in [(0, 0), (0, 5), (3, 0), (10, 5), (11, 5)]] == [
        0,
        0,
        1,
        2,
        3,
    ]
    assert model.now() > "2026-01-01" and len(model.now()) == 26


def test_every_setting_is_documented() -> None:
    import dataclasses

    from khala.config import GatewaySettings, UpSettings

    text = (Path(__file__).parents[1] / "docs" / "operations.md").read_text()
    for cls in (UpSettings, JudicatorSettings, ExecutorSettings, GatewaySettings):
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            assert f"`{flag}` | `KHALA_{f.name.upper()}` | `{f.default!r}`" in text, flag


def test_the_limits_policy_keeps_its_names_on_every_node(tmp_path: Path) -> None:
    """TOML keys ([common] or the node's section), KHALA_* names and --flags of the limits group
    work on the judicator, the executor and the gateway alike."""
    from khala.config import GatewaySettings, LimitSettings

    path = tmp_path / "k.toml"
    path.write_text(
        "[common]\nzip_max_files = 7\nmax_cpu_limit = 60\n"
        "[judicator]\nmax_task_size = 1000\n[executor]\nmax_task_size = 1000\n"
        "[gateway]\nmax_task_size = 1000\n"
    )
    env = {"KHALA_ZIP_MAX_BYTES": "2048", "KHALA_MAX_MEMORY_LIMIT": "4096"}
    for cls, section in (
        (JudicatorSettings, "judicator"),
        (ExecutorSettings, "executor"),
        (GatewaySettings, "gateway"),
    ):
        s = load(cls, section, config_file=str(path), env=env, flags={"max_pids_limit": "9"})
        assert isinstance(s, LimitSettings)
        assert (s.max_task_size, s.zip_max_files, s.max_cpu_limit) == (1000, 7, 60), section
        assert (s.zip_max_bytes, s.max_memory_limit, s.max_pids_limit) == (2048, 4096, 9)
        assert s.max_output_limit == LimitSettings().max_output_limit
    for node in ("judicator", "executor", "gateway"):
        args = build_parser().parse_args([node, "--zip-max-files", "3", "--max-task-size", "5"])
        assert (args.zip_max_files, args.max_task_size) == ("3", "5"), node


def test_unknown_sections_and_common_keys_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "k.toml"
    path.write_text("[gw]\nworkers = 3\n")
    with pytest.raises(ConfigError, match=r"unknown section \[gw\]"):
        load(GatewaySettings, "gateway", config_file=str(path), env={})
    path.write_text("[common]\nwrokers = 3\n")
    with pytest.raises(ConfigError, match="wrokers"):
        load(GatewaySettings, "gateway", config_file=str(path), env={})
    # A [common] key of another node is fine (each node takes its own)
    path.write_text('[common]\nslots = 3\nmax_timeout = 9.5\n')
    assert load(GatewaySettings, "gateway", config_file=str(path), env={}).max_timeout == 9.5
    assert load(ExecutorSettings, "executor", env={"KHALA_CONFIG": str(path)}).slots == 3
