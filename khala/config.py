"""Settings: one typed object per node, layered defaults → TOML file → KHALA_* env → flags.

Every setting is a dataclass field with its default and its help text; the command-line flags,
the environment names and the docs are derived from these fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from khala.errors import ConfigError
from khala.rules.identity import parse as parse_identities

ENV_PREFIX = "KHALA_"
T = TypeVar("T")


def setting(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse
    return field(default=default, metadata={"help": help})


#: Every IPv4 range that is not the public internet (RFC 6890): private, shared, link-local,
#: documentation, benchmarking, multicast and reserved addresses.
DEFAULT_NETWORK_DENY = (
    "0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12,"
    "192.0.0.0/24,192.0.2.0/24,192.88.99.0/24,192.168.0.0/16,198.18.0.0/15,198.51.100.0/24,"
    "203.0.113.0/24,224.0.0.0/4,240.0.0.0/4")


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) or 1


@dataclass
class DiscoverySettings:
    """Where nodes find judicators: etcd when `etcd` is set, else the static list."""

    etcd: str = setting("", "etcd endpoints, http://HOST:PORT[,…]; empty = static addresses")
    prefix: str = setting("/khala", "etcd key prefix under which judicators register")
    judicators: str = setting("127.0.0.1:4000", "static judicator addresses HOST:PORT[,…]")
    log_level: str = setting("info", "log level: debug, info, warning, error")
    cluster_secret_file: str = setting(
        "", "file holding the cluster secret nodes prove on every Thrift connection; empty = "
        "node authentication off (docs/security.md)"
    )


@dataclass
class LimitSettings:
    """The limits policy, one group in every node's settings (give all nodes the same values,
    e.g. in [common]): the gateway and the judicator refuse a task beyond it (result 3 for the
    size, 4 otherwise), the executor clamps a step's limits to it and unpacks no larger zip.
    The checks are khala/rules/limits.py."""

    max_memory_limit: int = setting(4 * 1024**3, "largest memory limit a task may ask, bytes")
    max_cpu_limit: int = setting(3600, "largest CPU-seconds limit a task may ask")
    default_cpu_limit: float = setting(
        60.0, "CPU seconds of an execute step whose task asks none (khala/rules/seconds.py)")
    default_timeout: float = setting(
        60.0, "wall seconds of a step whose task asks none or 0 (the seed's 0 = unlimited)")
    max_timeout: float = setting(
        3600.0, "most wall seconds any step runs; a larger timeout is capped to it")
    max_pids_limit: int = setting(4096, "largest pids limit a task may ask")
    max_output_limit: int = setting(256 * 1024 * 1024, "largest output cap a task may ask, bytes")
    max_disk_limit: int = setting(
        4 * 1024**3, "largest work area (execute_disk_limit) a task may ask, bytes")
    max_task_size: int = setting(16252928, "largest accepted task in bytes (result 3 beyond)")
    zip_max_bytes: int = setting(256 * 1024 * 1024, "largest total unpacked size of a zip")
    zip_max_files: int = setting(10000, "most files in a zip")
    max_cases: int = setting(1000, "most test cases a judged task may have")
    max_env_bytes: int = setting(
        32 * 1024, "most bytes of a step's environment variables (NAME=value and a NUL each)")
    max_cpu_rate: float = setting(64.0, "largest CPU rate (CPUs at once) a step may ask")
    max_core_limit: int = setting(
        64 * 1024 * 1024, "largest core file a task may let its execute step write in its "
        "work area (execute core_limit), bytes; 0 = core files never")
    run_users: str = setting(
        "", "host users tasks may run as (Meproc's `user`): NAME=UID[:GID],…; never root; "
        "empty = none (docs/meproc.md)")
    run_groups: str = setting(
        "", "host groups tasks may run as (Meproc's `group`): NAME=GID,…; never root")

    def __post_init__(self) -> None:
        parse_identities(self.run_users, self.run_groups)  # ConfigError when malformed


@dataclass
class JudicatorSettings(DiscoverySettings, LimitSettings):
    listen: str = setting("127.0.0.1:4000", "HOST:PORT the Thrift server listens on")
    advertise: str = setting("", "HOST:PORT registered in etcd; empty = the listen address")
    name: str = setting("", "registered name; empty = judicator.<hostname>.<port>")
    store: str = setting(
        "sqlite:///khala-data/khala.db", "store URL: sqlite:///path or mongodb://…"
    )
    ttl: int = setting(10, "etcd lease TTL in seconds (registration and leadership)")
    expiry: float = setting(10.0, "seconds of silence after which an executor is reaped")
    reap_interval: float = setting(1.0, "seconds between reaper passes of the leader")
    max_wait_ms: int = setting(5000, "longest report long-poll a judicator grants, ms")
    poll_fallback: float = setting(
        0.5, "seconds between store re-checks of a waiting report long-poll (catches work a "
        "missed etcd wake announced; with static discovery, the dispatch delay of work queued "
        "through another judicator)"
    )
    mongo_write_concern: str = setting("majority", "MongoDB write concern: majority, 1, …")
    mongo_read_concern: str = setting("majority", "MongoDB read concern: majority, local, …")
    mongo_bodies_apart: bool = setting(
        False, "keep a new MongoDB task's body of 16 KiB or more (zips, texts) apart from its "
        "document (docs/deployment.md); turn on once no judicator older than this one is left"
    )
    max_task_wait: float = setting(60.0, "longest API v2 ?wait= a judicator holds, seconds")
    metrics_listen: str = setting("", "HOST:PORT of this node's Prometheus /metrics; empty = none")
    webhook_timeout: float = setting(
        5.0, "seconds one webhook try may take in all: resolving, connecting, sending and "
        "reading the answer's head")
    webhook_tries: int = setting(3, "tries of a webhook before it is marked failed")
    webhook_backoff: float = setting(1.0, "seconds before the 2nd try; doubled for each next")
    webhook_secret_file: str = setting(
        "", "file holding the secret of the webhook HMAC signature header; empty = unsigned"
    )
    webhook_allow_internal: bool = setting(
        False, "allow callback URLs at loopback, link-local, private-use or the nodes' own "
        "addresses (tests, trusted networks)"
    )
    webhook_workers: int = setting(4, "webhooks the leader sends at once")
    webhook_per_host: int = setting(
        2, "webhooks the leader sends at once to one host (of the URL); more wait their turn")
    job_pass: float = setting(0.5, "seconds between two passes of the leader's job scheduler")
    job_stop_grace: float = setting(5.0, "seconds from SIGTERM to kill when a job is stopped")
    job_backoff: float = setting(
        1.0, "seconds a daemon replica waits after a short run (one that ended within "
        "job_backoff_max of its submission); doubled for each further short run in a row")
    job_backoff_max: float = setting(300.0, "the longest back-off of a daemon replica, seconds")
    job_keep_runs: int = setting(
        100, "past runs kept per job (its current runs aside); older ones are removed")
    cron_unit: float = setting(
        60.0, "seconds per cron minute; TEST ONLY: 1 makes `* * * * *` fire every second"
    )
    max_connections: int = setting(
        256, "most Thrift connections served at once (more are closed at once)")
    handshake_timeout: float = setting(
        5.0, "seconds a new Thrift connection has for the whole node-authentication handshake")
    handshake_limit: int = setting(
        64, "Thrift connections in the handshake at once, apart from max_connections; beyond "
        "it the oldest is dropped")
    handshake_per_peer: int = setting(
        16, "Thrift connections in the handshake at once from one address; beyond it that "
        "address's oldest is dropped")
    rpc_max_message: int = setting(
        64 * 1024 * 1024, "largest Thrift call, and its texts inflated together, bytes"
    )
    rpc_max_items: int = setting(100_000, "most list/map items plus structs in one Thrift call")
    # Files (docs/judging.md, "Files"): problems' test data, large outputs
    max_file_size: int = setting(4 * 1024**3, "largest file one upload may store, bytes")
    files_grace: float = setting(
        3600.0, "seconds a stored file nothing refers to is kept after it was last asked for "
        "(and an unfinished upload after it began)")
    files_sweep_interval: float = setting(
        600.0, "seconds between the leader's sweeps of files nothing refers to (and of MongoDB "
        "task bodies no task names)")
    rejudge_pass: float = setting(
        0.5, "seconds between the leader's passes queueing the tasks of rejudges")

    def resolved_name(self) -> str:
        port = self.listen.rsplit(":", 1)[-1]
        return self.name or f"judicator.{socket.gethostname()}.{port}"


@dataclass
class ExecutorSettings(DiscoverySettings, LimitSettings):
    name: str = setting("", "executor name reported to judicators; empty = executor.<host>.<pid>")
    slots: int = setting(0, "tasks run at once; 0 = number of CPUs")
    work_dir: str = setting("", "directory for task work dirs; empty = a temporary directory")
    sandbox: str = setting("bwrap", "sandbox: bwrap (namespaces + cgroups) or none (unsafe)")
    heartbeat: float = setting(1.0, "longest seconds between two reports (long-poll hold)")
    progress_delay: float = setting(
        0.02, "seconds a task's new status (Running) waits before it is reported at once; a "
        "step that ends sooner is reported by its result alone; 0 = report every change at once"
    )
    rpc_timeout: float = setting(10.0, "seconds an RPC may take beyond the long-poll hold")
    expiry: float = setting(
        10.0, "seconds without an answered report after which running tasks are stopped (the "
        "judicators' reaper has requeued them); at most the judicators' --expiry; 0 = never")
    output_limit: int = setting(64 * 1024 * 1024, "default cap of each captured stream, bytes")
    memory_limit: int = setting(512 * 1024 * 1024, "default memory limit of a step, bytes")
    pids_limit: int = setting(256, "default process/thread limit of a step")
    result_limit: int = setting(4 * 1024 * 1024, "bytes of each stream kept in the result")
    result_inline: int = setting(
        4 * 1024 * 1024, "a stream longer than this is kept whole as a stored file (the result "
        "itself keeps its first 64 KiB); what result_limit allows beyond it never travels in "
        "a report")
    disk_limit: int = setting(1024 * 1024 * 1024, "default bytes of a run's work area (bwrap: "
                              "a tmpfs); a task's execute_disk_limit replaces it")
    unpack_timeout: float = setting(10.0, "seconds the unpacking of a task's zips may take")
    stream_listen: str = setting(
        "127.0.0.1:0", "HOST:PORT of the live-output endpoint gateways connect to; off = none")
    stream_advertise: str = setting(
        "", "HOST:PORT registered in etcd; empty = stream_listen's, a wildcard host (0.0.0.0) "
        "replaced by this host's address")
    stream_buffer: int = setting(1024 * 1024, "bytes of live output kept per running task")
    stream_input: int = setting(1024 * 1024, "bytes of interactive input queued per task")
    stream_clients: int = setting(64, "stream connections served at once")
    stream_handshake_timeout: float = setting(
        5.0, "seconds a new stream connection has for the node-authentication handshake (with "
        "a cluster secret) and its first frame, in all")
    stream_handshake_limit: int = setting(
        32, "stream connections before their first frame at once, apart from stream_clients; "
        "beyond it the oldest is dropped")
    stream_handshake_per_peer: int = setting(
        8, "stream connections before their first frame at once from one address; beyond it "
        "that address's oldest is dropped")
    stream_etcd: str = setting("", "etcd endpoints where the stream endpoint is registered; "
                               "empty = etcd")
    stop_grace: float = setting(
        10.0, "seconds running tasks may finish after the first SIGTERM/SIGINT, then killed"
    )
    metrics_listen: str = setting("", "HOST:PORT of this node's Prometheus /metrics; empty = none")
    # Judging (docs/judging.md)
    languages: str = setting("auto", "language presets offered: auto = every one detected on "
                             "this host; or a comma list (c,cpp,…) of those to offer if found")
    cache_dir: str = setting("", "compile cache directory; empty = <work_dir>/.compile-cache, "
                             "or a temporary one removed at exit without a work_dir")
    cache_bytes: int = setting(256 * 1024 * 1024, "bound of the compile cache, bytes; 0 = off")
    file_cache_dir: str = setting(
        "", "cache of stored problems' files (tests, jury programs); empty = "
        "<work_dir>/.file-cache, or a temporary one removed at exit without a work_dir")
    file_cache_bytes: int = setting(
        4 * 1024**3, "bound of the file cache, bytes: least recently used files go first (files "
        "a running task uses never do, so the cache may exceed it while they run)")
    image_dir: str = setting(
        "", "unpacked images (docs/images.md), each once, read-only to steps; empty = "
        "<work_dir>/.images, or a temporary one removed at exit without a work_dir")
    image_bytes: int = setting(
        16 * 1024**3, "bound of the unpacked images, bytes (an image's tar is in the file cache "
        "only while it is unpacked): least recently used images go first (images a running "
        "task uses never do); also the largest image unpacked")
    images: str = setting(
        "", "images whose language presets this executor offers (comma list of NAME or "
        "NAME:VERSION; docs/images.md): fetched and unpacked at start, their languages offered "
        "beside the host's; empty = none")
    case_output_limit: int = setting(64 * 1024, "bytes of each case's stdout/stderr kept")
    case_parallelism: int = setting(0, "most slots the cases of one task use at once; 0 = "
                                    "every free slot")
    warm_sandboxes: int = setting(
        2, "warm bwrap sandboxes kept per slot, reused clean across steps; 0 = one bwrap per step")
    warm_images: int = setting(
        4, "images whose steps get warm sandboxes at once, each as many as the host's root "
        "(warm_sandboxes per slot); another image takes the place of the least recently used "
        "one only once that one has had no step for 5 s (until then its steps run cold); "
        "0 = steps in images always run cold")
    warm_image_idle: float = setting(
        120.0, "seconds without a step after which an image's warm sandboxes are closed")
    allow_network: bool = setting(
        False, "run steps that ask for the network (a user network stack, slirp4netns: the "
        "internet yes, this host, its loopback and network_deny no); off = such tasks fail")
    network_deny: str = setting(
        DEFAULT_NETWORK_DENY, "IPv4 ranges (CIDR, comma list) a step with the network may "
        "never reach, besides this host's own addresses and loopback")
    ahead: int = setting(
        1, "tasks taken ahead of the slots while every slot is busy, queued here and started "
        "the moment a slot frees (no report round trip between tasks); 0 = none")

    def resolved_name(self) -> str:
        return self.name or f"executor.{socket.gethostname()}.{os.getpid()}"

    def resolved_slots(self) -> int:
        return self.slots if self.slots > 0 else _cpus()


@dataclass
class GatewaySettings(DiscoverySettings, LimitSettings):
    listen: str = setting("127.0.0.1:7000", "HOST:PORT the HTTP server listens on")
    workers: int = setting(2, "gunicorn worker processes")
    access_log: bool = setting(False, "log one line per HTTP request on stderr")
    threads: int = setting(8, "threads per gunicorn worker")
    truncate: int = setting(1000, "characters of a text field shown unless no_truncate is given")
    rpc_timeout: float = setting(30.0, "seconds a judicator RPC may take")
    request_timeout: float = setting(
        60.0, "seconds a client has to send a whole request (head and body); then it is cut off"
    )
    max_connections: int = setting(
        1000, "open client connections per gateway worker; beyond it the worker stops accepting"
    )
    write_timeout: float = setting(
        60.0, "seconds a client has to take a whole response (a stream: each event or "
        "message) once its first byte is sent; then it is cut off")
    max_task_wait: float = setting(60.0, "largest ?wait= of GET /api/v2/tasks/{id}, seconds")
    max_waits: int = setting(
        2, "GET /api/v2/tasks/{id}?wait= held at once per worker (each holds a thread); "
        "beyond: 429 with Retry-After, unless the task is done")
    max_batch_size: int = setting(1000, "most tasks in one POST /api/v2/batches")
    finished_cache_seconds: float = setting(
        1.0, "seconds a worker answers GET /api/task of a finished task from memory (a task "
        "deleted through another worker or gateway is shown that long at most); 0 = off")
    finished_cache_bytes: int = setting(
        32 * 1024 * 1024, "memory per worker for finished tasks kept (least recently read out)")
    keys_file: str = setting(
        "", "API keys file (TOML, `khala keys`); empty = no keys: the APIs are open"
    )
    seed_requires_keys: bool = setting(
        False, "the seed API (/api/...) also requires an API key (when keys_file is set)"
    )
    max_streams: int = setting(
        4, "pow-1 websockets + event streams per worker at once (each holds a thread); "
        "beyond: 503")
    max_stream_seconds: float = setting(3600.0, "longest life of one websocket/event stream")
    stream_etcd: str = setting("", "etcd endpoints where executors register their stream "
                               "endpoints; empty = etcd")
    pow_calls: str = setting(
        "", "pow-1 server-defined calls: a JSON object {name: task template} or @FILE")
    max_package_size: int = setting(
        4 * 1024**3, "largest problem package (or stored file) one request may upload, bytes; "
        "also the most its files may unpack to")
    max_image_size: int = setting(
        8 * 1024**3, "largest image tar one request may import (docs/images.md), bytes; also "
        "the most its files may unpack to")


@dataclass
class UpSettings:
    port: int = setting(7000, "HTTP port of the gateway on 127.0.0.1")
    data_dir: str = setting("khala-data", "directory for the store, etcd data and work dirs")
    executors: int = setting(1, "executor processes to start")
    slots: int = setting(0, "slots per executor; 0 = number of CPUs")
    sandbox: str = setting("bwrap", "sandbox for executors: bwrap, or none (unsafe)")
    judicator_port: int = setting(0, "Thrift port of the judicator; 0 = a free port")
    etcd: str = setting("auto", "auto = start a local etcd if one is installed; off = static")
    log_level: str = setting("info", "log level: debug, info, warning, error")
    node_auth: bool = setting(
        True, "nodes prove a cluster secret (created in data_dir) on every Thrift connection"
    )


# ----------------------------------------------------------------------------- loading

#: The sections a settings file may have: one per command, plus [common] for all of them.
SECTIONS: dict[str, type] = {
    "up": UpSettings,
    "judicator": JudicatorSettings,
    "executor": ExecutorSettings,
    "gateway": GatewaySettings,
}


def check_sections(doc: Mapping[str, Any], path: str) -> None:
    """Refuse a section no command reads, and a [common] key no node knows: a misspelt name
    would otherwise be ignored without a word."""
    unknown = sorted(set(doc) - set(SECTIONS) - {"common"})
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}] in {path}; the sections are "
                          f"[common], " + ", ".join(f"[{n}]" for n in SECTIONS))
    common = doc.get("common", {})
    if not isinstance(common, dict):
        raise ConfigError(f"[common] of {path} is not a table")
    known = {f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)}
    stray = sorted(set(common) - known)
    if stray:
        raise ConfigError(f"unknown settings in [common] of {path}: {stray}")


def _field_type(cls: type, f: dataclasses.Field[Any]) -> type:
    hints = typing.get_type_hints(cls)
    hint = hints[f.name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint  # type: ignore[no-any-return]


def _convert(kind: type, name: str, value: Any) -> Any:
    try:
        if kind is bool and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(value)
            return lowered in {"1", "true", "yes", "on"}
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {value!r} is not a valid {kind.__name__}") from exc


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One --flag per settings field; unset flags stay None so lower layers show through."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(
            flag,
            dest=f.name,
            default=None,
            help=f"{f.metadata.get('help', '')} (default: {f.default!r})",
        )


def load(
    cls: type[T],
    section: str,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> T:
    """Build `cls` from its defaults, then [section] of the TOML file, then KHALA_* env, then
    flags (values that are None are ignored)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        check_sections(doc, path)
        table = {**doc.get("common", {}), **doc.get(section, {})}
        unknown = set(doc.get(section, {})) - set(names)
        if unknown:
            raise ConfigError(f"unknown settings in [{section}] of {path}: {sorted(unknown)}")
        values.update({k: v for k, v in table.items() if k in names})
    for name in names:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    for name, value in (flags or {}).items():
        if name in names and value is not None:
            values[name] = value
    typed = {k: _convert(_field_type(cls, names[k]), k, v) for k, v in values.items()}
    return cls(**typed)


def split_addresses(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
