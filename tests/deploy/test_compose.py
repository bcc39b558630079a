"""docker-compose.yml and Dockerfile: no Docker engine here, so check what can be checked
without one: the file passes `docker-compose config` (the Compose schema, Debian's validator),
every khala command and KHALA_* variable is accepted by the real CLI and settings, and the etcd
cluster, the MongoDB replica set, the addresses and the images fit together."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from khala.cli.main import COMMANDS, build_parser
from khala.config import load, parse_hostport, split_addresses
from khala.executor.streaming import advertised
from khala.judging.presets import PRESETS
from tests.fixtures.servers import missing

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


def khala_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in compose["services"].items()
        if isinstance(svc.get("command"), list) and svc["command"][:1] == ["khala"]
    }


def settings_of(service: dict[str, Any]) -> Any:
    """Parse the command with the real parser, then build the node's settings from the
    service's environment and the flags, as `khala` itself does."""
    command = service["command"]
    try:
        args = build_parser().parse_args(command[1:])
    except SystemExit as exc:
        pytest.fail(f"`{' '.join(command)}` is not a valid khala command (exit {exc.code})")
    cls, _ = COMMANDS[args.command]
    env = {str(k): str(v) for k, v in (service.get("environment") or {}).items()}
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in env if k.startswith("KHALA_") and k[len("KHALA_"):].lower() not in fields]
    assert not unknown, f"{args.command} has no settings for {unknown}"
    flags = {k: v for k, v in vars(args).items() if k not in {"command", "config"}}
    return args.command, load(cls, args.command, env=env, flags=flags)


def test_every_khala_command_is_real(compose: dict[str, Any]) -> None:
    services = khala_services(compose)
    kinds = {name: settings_of(svc)[0] for name, svc in services.items()}
    assert sorted(kinds.values()) == ["executor", "gateway", "judicator", "judicator"]
    for name, svc in compose["services"].items():
        command = svc.get("command")
        if str(svc.get("image", "")).startswith("khala") or svc.get("build"):
            assert name in services, f"{name} builds the khala image but runs {command!r}"


def test_every_node_finds_judicators_through_the_etcd_cluster(compose: dict[str, Any]) -> None:
    etcd_members = etcd_clients(compose)
    for name, svc in khala_services(compose).items():
        _, settings = settings_of(svc)
        endpoints = split_addresses(settings.etcd)
        assert sorted(endpoints) == sorted(etcd_members), f"{name} does not use every etcd member"
        assert settings.prefix == "/khala"


def etcd_clients(compose: dict[str, Any]) -> list[str]:
    """Client URLs of the etcd members, checked to form one consistent three-member cluster."""
    members: dict[str, dict[str, str]] = {}
    for name, svc in compose["services"].items():
        command = svc.get("command") or []
        if command[:1] != ["etcd"]:
            continue
        flags: dict[str, str] = {}
        for arg in command[1:]:
            match = re.fullmatch(r"--([a-z-]+)=(.*)", arg)
            assert match is not None, f"{name}: unexpected etcd argument {arg!r}"
            flags[match[1]] = match[2]
        assert flags["name"] == name
        assert flags["advertise-client-urls"] == f"http://{name}:2379"
        assert flags["initial-advertise-peer-urls"] == f"http://{name}:2380"
        assert flags["listen-client-urls"].endswith(":2379")
        members[name] = flags
    assert len(members) == 3
    expected = ",".join(f"{n}=http://{n}:2380" for n in sorted(members))
    for flags in members.values():
        assert flags["initial-cluster"] == expected
        assert flags["initial-cluster-state"] == "new"
    return [f"http://{n}:2379" for n in members]


def test_judicators_share_the_replica_set(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mongods = sorted(n for n, s in services.items() if (s.get("command") or [])[:1] == ["mongod"])
    assert len(mongods) == 3
    for name in mongods:
        command = services[name]["command"]
        assert command[command.index("--replSet") + 1] == "rs0"
        assert "--bind_ip_all" in command
    init = services["mongo-init"]
    script = init["command"][-1]
    assert "rs.initiate(" in script
    assert sorted(re.findall(r'host: "(\w+):27017"', script)) == mongods
    assert set(init["depends_on"]) == set(mongods)
    judicators = [s for s in khala_services(compose).values() if s["command"][1] == "judicator"]
    names = set()
    for svc in judicators:
        _, settings = settings_of(svc)
        url = urlsplit(settings.store)
        assert url.scheme == "mongodb"
        assert sorted(h.split(":")[0] for h in url.netloc.split(",")) == mongods
        assert parse_qs(url.query) == {"replicaSet": ["rs0"]}
        assert settings.mongo_write_concern == "majority"
        assert svc["depends_on"]["mongo-init"]["condition"] == "service_completed_successfully"
        host, port = parse_hostport(settings.advertise)
        assert (host, port) == (svc["hostname"], parse_hostport(settings.listen)[1])
        assert host in compose["services"], f"{host} is not a service name other nodes resolve"
        names.add(settings.resolved_name())
    assert len(names) == len(judicators) == 2, "judicators need distinct registered names"


def test_executors_scale_and_can_sandbox(compose: dict[str, Any]) -> None:
    executor = compose["services"]["executor"]
    _, settings = settings_of(executor)
    assert settings.sandbox == "bwrap"
    assert executor.get("privileged") is True
    assert "container_name" not in executor and "ports" not in executor  # --scale executor=N
    assert settings.name == "", "a fixed name would make scaled executors collide"


def compose_config(*args: str, env: dict[str, str] | None = None,
                   file: Path = ROOT / "docker-compose.yml") -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of `file` (the schema check, and variables resolved)."""
    if shutil.which("docker-compose") is None:
        missing("docker-compose (the compose file's validator) is not installed")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KHALA_", "COMPOSE_"))}
    return subprocess.run(["docker-compose", "-f", str(file), "config", *args],
                          env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


@pytest.mark.integration  # runs docker-compose
def test_docker_compose_config_accepts_it_and_refuses_a_broken_one(tmp_path: Path) -> None:
    done = compose_config("-q")
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "docker-compose.yml"  # the same file with a misspelt key
    broken.write_text((ROOT / "docker-compose.yml").read_text().replace(
        "    privileged: true", "    privilegd: true"))
    done = compose_config("-q", file=broken)
    assert done.returncode != 0 and "privilegd" in done.stderr, done.stderr


@pytest.mark.integration  # runs docker-compose
def test_gateway_is_published_on_loopback_unless_asked(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    _, settings = settings_of(gateway)
    assert parse_hostport(settings.listen) == ("0.0.0.0", 7000)  # inside its container
    resolved = yaml.safe_load(compose_config().stdout)["services"]["gateway"]
    assert resolved["ports"] == ["127.0.0.1:7000:7000/tcp"]
    assert resolved["environment"]["KHALA_KEYS_FILE"] == ""  # and no keys
    public = {"KHALA_GATEWAY_PUBLISH": "0.0.0.0", "KHALA_KEYS_FILE": "/etc/khala/keys.toml"}
    resolved = yaml.safe_load(compose_config(env=public).stdout)["services"]["gateway"]
    assert resolved["ports"] == ["0.0.0.0:7000:7000/tcp"]
    assert resolved["environment"]["KHALA_KEYS_FILE"] == "/etc/khala/keys.toml"
    assert "khala-keys:/etc/khala" in gateway["volumes"]


def test_executors_register_a_stream_address_the_gateway_reaches(
        compose: dict[str, Any]) -> None:
    _, settings = settings_of(compose["services"]["executor"])
    host, _ = parse_hostport(settings.stream_listen)
    assert host == "0.0.0.0" and settings.stream_advertise == ""
    # the wildcard is registered as the container's own address, not 127.0.0.1
    address = advertised(settings.stream_listen)
    assert not address.startswith(("0.0.0.0", "127.")) and address.endswith(":7010")


def test_the_executor_image_has_every_presets_tools(compose: dict[str, Any]) -> None:
    executor = compose["services"]["executor"]
    assert executor["build"] == {"context": ".", "target": "executor"}
    text = (ROOT / "Dockerfile").read_text()
    stage = text.split("FROM base AS executor", 1)[1]
    installed = set(" ".join(re.findall(r"apt-get install[^&]*", stage)).replace("\\", " ")
                    .split())
    provides = {"gcc": "gcc", "g++": "g++", "python3": "python3", "rustc": "rustc",
                "javac": "openjdk-17-jdk-headless", "java": "openjdk-17-jdk-headless",
                "go": "golang-go"}
    for preset in PRESETS.values():
        for tool in preset.tools:
            assert provides[tool] in installed, f"{preset.name} needs {tool}"
    for name, svc in khala_services(compose).items():
        if name != "executor":  # the other nodes need no compiler
            assert svc["build"] == {"context": ".", "target": "base"}, name


def test_dependencies_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dependency in svc.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in svc.get("volumes") or []:
            source = volume.split(":")[0]
            assert source in (compose.get("volumes") or {}), f"{name}: undeclared volume {source}"


def test_dockerfile_installs_khala_with_bubblewrap() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim AS base$", text, re.M)
    assert "bubblewrap" in text
    assert re.search(r"pip install[^\n]* \.", text)
    for copied in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"


def test_every_node_proves_the_cluster_secret(compose: dict[str, Any]) -> None:
    """Node authentication: every khala node reads the secret that the cluster-secret service
    writes into the shared volume, and waits for it."""
    init = compose["services"]["cluster-secret"]
    script = " ".join(init["command"])
    target = "/run/khala/cluster.secret"
    assert target in script and "/dev/urandom" in script
    volume = next(v for v in init["volumes"] if v.endswith(":/run/khala"))
    for name, svc in khala_services(compose).items():
        _, settings = settings_of(svc)
        assert settings.cluster_secret_file == target, name
        assert f"{volume.split(':')[0]}:/run/khala:ro" in svc["volumes"], name
        condition = svc["depends_on"]["cluster-secret"]["condition"]
        assert condition == "service_completed_successfully", name
