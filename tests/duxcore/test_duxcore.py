"""Duxcore's API (seed 001) through a client written from its text alone (client.py), against a
real cluster: etcd, a judicator on SQLite, an executor on bwrap (this host: its processes' pids
are this host's, read in /proc), a gateway with API keys. A tiny image (the host's bash and
busybox, built here) imported by POST /docker/image; every route exercised: create (nothing
runs), inspect, start, stats from the running step's cgroup, an env patch applied only at the
next restart, stop, kill, delete with its bind contents; refusals say why."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from khala.gateway.keys import add_key
from khala.rpc.auth import write_secret_file
from tests.duxcore.client import Duxcore, DuxcoreError
from tests.fixtures.cluster import Cluster
from tests.fixtures.waiting import until
from tests.images.tars import MARKER, MARKER_TEXT, tiny_tar

pytestmark = pytest.mark.integration

RUN_AS = {"run_users": "guest=1234:1235", "run_groups": "guests=1235"}
WAIT = 90.0
STATS_FIELDS = {"read", "preread", "num_procs", "pids_stats", "network", "networks",
                "memory_stats", "blkio_stats", "cpu_stats", "precpu_stats", "storage_stats",
                "name", "id"}


@dataclass
class Env:
    cluster: Cluster
    client: Duxcore
    keys: dict[str, Path]  # role → its corekey.bin
    image: str
    work: str  # the executor's work dir


def corekey(tmp: Path, role: str, key: str) -> Path:
    path = tmp / f"corekey-{role}.bin"
    path.write_bytes(key.encode())
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, etcd_server: Any) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("duxcore")
    keys_file = str(tmp / "keys.toml")
    keys = {role: corekey(tmp, role, add_key(keys_file, user, role)[0])
            for role, user in (("admin", 1), ("read", 2), ("submit", 7))}
    keys["unknown"] = corekey(tmp, "unknown", "khala_00000000_not-a-key")
    secret = str(tmp / "cluster.secret")
    write_secret_file(secret)
    nodes = {**RUN_AS, "cluster_secret_file": secret}
    c = Cluster(tmp, etcd_url=etcd_server.url, prefix=f"/khala-dux-{uuid.uuid4().hex[:10]}")
    work = os.path.join(c.work_root, "dux-exec")
    try:
        c.start_judicator(job_pass=0.2, job_stop_grace=2, **nodes)
        c.start_executor(slots=3, work_dir=work, **nodes)
        c.start_gateway(keys_file=keys_file, **nodes)
        client = Duxcore(c.gateway_url, keys["admin"])
        image = client.import_image(Path(tiny_tar(str(tmp / "tiny.tar"), str(tmp))).read_bytes())
        yield Env(c, client, keys, image, work)
    finally:
        c.stop()


def sid() -> str:
    return f"svc-{uuid.uuid4().hex[:10]}"


def service(env: Env, cmd: list[str], **params: Any) -> str:
    service_id = sid()
    env.client.create(**{"id": service_id, "image": env.image,
                         "bind_dir": f"/srv/dux/{service_id}", "cmd": cmd,
                         "open_stdin": False, "tty": False, **params})
    return service_id


def running_pid(env: Env, service_id: str, other_than: int = 0, comm: str = "sleep") -> int:
    """The pid of the service's process once inspect shows it (for a moment after a start the
    executor may report its sandbox's launcher first: docs/sandbox.md, `pid`)."""
    def pid() -> int:
        state = env.client.inspect(service_id)["State"]
        found = state["Pid"] if state["Running"] and state["Pid"] not in (0, other_than) else 0
        return found if found and command_of(found) == comm else 0
    return until(pid, WAIT, f"{service_id} running {comm}")  # type: ignore[no-any-return]


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def exited(env: Env, service_id: str) -> dict[str, Any]:
    return until(lambda: (s := env.client.inspect(service_id)["State"])["Status"] == "exited"
                 and s, WAIT, f"{service_id} exited")  # type: ignore[no-any-return]


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(v.decode().split("=", 1) for v in raw if b"=" in v)


def alive(pid: int) -> bool:
    try:
        return b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes() or \
            b"bash" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def tar_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_service_is_created_stopped_then_started_in_its_image(env: Env) -> None:
    service_id = sid()  # open_stdin and tty as the seed's defaults leave them (tty: none)
    env.client.create(id=service_id, image=env.image, bind_dir="/srv/dux/first",
                      cmd=["sleep", "1000"], hostname="web-1")
    shown = env.client.inspect(service_id)
    assert shown["State"]["Status"] == "created" and shown["State"]["Running"] is False
    assert shown["Name"] == "/" + service_id and len(shown["Id"]) == 64
    assert shown["Config"]["Image"] == env.image and shown["Config"]["Cmd"] == ["sleep", "1000"]
    assert shown["Khala"]["task"] is None  # nothing ran: create does not start
    env.client.ctl(service_id, "start")
    pid = running_pid(env, service_id)
    assert Path(f"/proc/{pid}/root{MARKER}").read_text() == MARKER_TEXT  # the image's root
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"1000"]
    status = Path(f"/proc/{pid}/status").read_text()
    assert "Uid:\t65534" in status  # the sandbox's user, never the host's root
    assert os.readlink(f"/proc/{pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
    assert os.readlink(f"/proc/{pid}/fd/0").startswith("pipe:")  # open_stdin: a live stdin
    named = subprocess.run(["nsenter", "--uts", f"--target={pid}", "hostname"],
                           capture_output=True, text=True, check=True).stdout
    assert named.strip() == "web-1"
    assert shown["Config"]["OpenStdin"] is True and shown["Config"]["Tty"] is False
    env.client.ctl(service_id, "start")  # running already: nothing changes
    assert env.client.inspect(service_id)["State"]["Pid"] == pid
    env.client.ctl(service_id, "stop")
    assert exited(env, service_id)["Running"] is False
    until(lambda: not alive(pid), WAIT, "the stopped process gone")
    env.client.delete(service_id)


def test_stats_are_the_running_steps_cgroup_counters(env: Env) -> None:
    service_id = service(env, ["bash", "-c", "x=$(printf '%*s' 4000000 ''); sleep 1000 & wait"],
                         max_ram=256 << 20, max_cpu=50_000)
    idle = env.client.stats(service_id)
    assert set(idle) == STATS_FIELDS and idle["pids_stats"] is None  # nothing runs
    env.client.ctl(service_id, "start")
    running_pid(env, service_id, comm="bash")
    # bash holds its 4 MB string before it starts sleep: wait for both (the pids counter)
    stats = until(lambda: (s := env.client.stats(service_id))["pids_stats"] is not None
                  and s["memory_stats"]["usage"] > 4_000_000
                  and s["pids_stats"]["current"] >= 2 and s, WAIT, "stats of the run")
    assert set(stats) == STATS_FIELDS
    assert stats["pids_stats"]["limit"] > 0
    memory = stats["memory_stats"]
    assert memory["limit"] == 256 << 20 and memory["stats"] and memory["max_usage"] > 0
    assert all(isinstance(v, int) for v in memory["stats"].values())
    cpu = stats["cpu_stats"]["cpu_usage"]
    assert cpu["total_usage"] > 0
    assert cpu["usage_in_usermode"] is not None and cpu["usage_in_kernelmode"] is not None
    throttling = stats["cpu_stats"]["throttling_data"]
    assert throttling is not None and throttling["periods"] >= 0  # a rate: the cpu controller
    assert stats["networks"] is None and stats["cpu_stats"]["system_cpu_usage"] is None
    assert stats["name"] == "/" + service_id
    assert stats["id"] == env.client.inspect(service_id)["Id"]
    env.client.ctl(service_id, "kill")
    assert exited(env, service_id)["ExitCode"] == 128 + signal.SIGKILL
    assert env.client.stats(service_id)["pids_stats"] is None
    env.client.delete(service_id)


def test_an_env_patch_is_applied_at_the_next_restart(env: Env) -> None:
    service_id = service(env, ["sleep", "1000"])
    env.client.set_env(service_id, {"GREETING": "first"})
    env.client.ctl(service_id, "start")
    first = running_pid(env, service_id)
    assert environ(first)["GREETING"] == "first"
    env.client.set_env(service_id, {"GREETING": "second", "MODE": "x y"})
    shown = env.client.inspect(service_id)
    assert "GREETING=first" in shown["Config"]["Env"]  # the running one's, until a restart
    assert shown["Khala"]["pending_env"] == {"GREETING": "second", "MODE": "x y"}
    assert environ(first)["GREETING"] == "first"
    env.client.ctl(service_id, "restart")
    second = running_pid(env, service_id, other_than=first)
    assert {k: environ(second).get(k) for k in ("GREETING", "MODE")} == {
        "GREETING": "second", "MODE": "x y"}
    until(lambda: not alive(first), WAIT, "the first process ended")
    assert "GREETING=second" in env.client.inspect(service_id)["Config"]["Env"]
    env.client.ctl(service_id, "restart")  # no change pending: a plain restart
    third = running_pid(env, service_id, other_than=second)
    assert environ(third)["GREETING"] == "second"
    env.client.ctl(service_id, "kill")
    exited(env, service_id)
    env.client.delete(service_id)


def test_kill_ends_a_process_that_ignores_sigterm(env: Env) -> None:
    service_id = service(env, ["bash", "-c", "trap '' TERM; sleep 1000 & wait; wait"])
    env.client.ctl(service_id, "start")
    pid = running_pid(env, service_id, comm="bash")
    env.client.ctl(service_id, "kill")
    state = exited(env, service_id)
    assert state["ExitCode"] == 128 + signal.SIGKILL
    until(lambda: not alive(pid), WAIT, "the killed process gone")
    env.client.delete(service_id)


def files_named(root: str, name: str) -> list[str]:
    return [os.path.join(d, name) for d, _, files in os.walk(root) if name in files]


def test_bind_contents_user_and_delete_with_its_bind_directory(env: Env) -> None:
    service_id = service(env, ["bash", "-c", "cat greeting.txt; ./run.sh"], user="guest")
    marker = f"bound-{uuid.uuid4().hex}.txt"
    env.client.put_bind(service_id, tar_of({"greeting.txt": b"hello\n", marker: b"mine\n",
                                            "run.sh": b"#!/bin/bash\nexec sleep 1000\n"}))
    assert env.client.inspect(service_id)["Khala"]["bind"]["files"] == 3
    env.client.ctl(service_id, "start")
    pid = running_pid(env, service_id)
    assert Path(f"/proc/{pid}/cwd/{marker}").read_text() == "mine\n"  # /work/data
    assert "Uid:\t1234" in Path(f"/proc/{pid}/status").read_text()  # the table's guest
    with pytest.raises(DuxcoreError) as busy:
        env.client.put_bind(service_id, tar_of({"x": b""}))
    assert busy.value.status == 409
    on_host = files_named(env.work, marker)
    assert on_host, "the bind contents are in the executor's work area"
    task = env.client.inspect(service_id)["Khala"]["task"]
    env.client.delete(service_id)
    with pytest.raises(DuxcoreError) as gone:
        env.client.inspect(service_id)
    assert gone.value.status == 404
    assert not alive(pid)
    # The bind directory went with the run: the executor removes a run's work area right
    # after the run, beside its result (khala/executor/workareas.py), so at most moments
    # after the run's task is seen done.
    until(lambda: not any(os.path.exists(p) for p in on_host), 10.0,
          "the run's bind directory removed")
    assert files_named(env.work, marker) == []
    answer = env.cluster.get(task)
    assert answer["result"] != 0  # the run's task (its copy of the files) is gone too


@pytest.mark.parametrize(("params", "words"), [
    ({"bind_contents": "http://example.invalid/b.tar.gz"}, "fetches no URL"),
    ({"port_map": {"80/tcp": {"HostPort": "8080"}}}, "publishes no host ports"),
    ({"tty": True}, "no terminal"),
    ({"user": "root"}, "user 'root' is not one this cluster runs tasks as"),
    ({"hostname": "-bad-"}, "hostname must be a host name"),
    ({"image": "nosuchimage"}, "nosuchimage"),
    ({"cmd": None}, "cmd is required"),
    ({"max_cpu": 10}, "max_cpu must be within"),
    ({"working_dir": "/etc"}, "outside the work area"),
    ({"volumes": ["/:/host"]}, "volumes"),
])
def test_refusals_say_why(env: Env, params: dict[str, Any], words: str) -> None:
    body = {"id": sid(), "image": env.image, "bind_dir": "/srv/x", "cmd": ["true"], **params}
    with pytest.raises(DuxcoreError) as refused:
        env.client.create(**{k: v for k, v in body.items() if v is not None})
    assert refused.value.status == 400 and words in refused.value.message, refused.value.message
    with pytest.raises(DuxcoreError) as none:
        env.client.inspect(body["id"])
    assert none.value.status == 404  # nothing was kept


def test_the_core_key_is_required_and_its_role_counts(env: Env) -> None:
    url = env.cluster.gateway_url
    for key in (None, env.keys["unknown"]):
        with pytest.raises(DuxcoreError) as refused:
            Duxcore(url, key).create(id=sid(), image=env.image, bind_dir="/srv/x", cmd=["true"])
        assert refused.value.status == 401
    service_id = service(env, ["true"])
    reader = Duxcore(url, env.keys["read"])
    assert reader.inspect(service_id)["Name"] == "/" + service_id
    for call in (lambda: reader.ctl(service_id, "start"), lambda: reader.delete(service_id),
                 lambda: Duxcore(url, env.keys["submit"]).set_env(service_id, {"A": "b"})):
        with pytest.raises(DuxcoreError) as forbidden:
            call()
        assert forbidden.value.status == 403
    garbled = Duxcore(url, None)
    garbled.headers = {"X-Duxcore-CoreKey": "not base64!"}
    with pytest.raises(DuxcoreError) as refused_garbled:
        garbled.inspect(service_id)
    assert refused_garbled.value.status == 401
    env.client.delete(service_id)


def test_ops_env_and_names_are_checked(env: Env) -> None:
    service_id = service(env, ["true"])
    with pytest.raises(DuxcoreError) as bad_op:
        env.client.ctl(service_id, "pause")
    assert bad_op.value.status == 400 and "op must be one of" in bad_op.value.message
    with pytest.raises(DuxcoreError) as bad_env:
        env.client.set_env(service_id, {"1BAD": "x"})
    assert bad_env.value.status == 400 and "'1BAD' is not a variable name" in bad_env.value.message
    with pytest.raises(DuxcoreError) as taken:
        env.client.create(id=service_id, image=env.image, bind_dir="/srv/x", cmd=["true"])
    assert taken.value.status == 409
    with pytest.raises(DuxcoreError) as unknown:
        env.client.ctl(sid(), "start")
    assert unknown.value.status == 404
    env.client.ctl(service_id, "start")  # `true` exits 0: the service stays exited
    assert exited(env, service_id)["ExitCode"] == 0
    env.client.delete(service_id)
