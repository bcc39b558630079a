"""`khala up`: a whole cluster on this machine — etcd, one judicator on SQLite, executors and
the gateway — each a child process in its own session, stopped in order on Ctrl-C/SIGTERM.

The nodes die with `khala up` however it ends (`kill -9` included), and one cluster at a time
holds a data dir (`khala.cli.lifeline`). The data dir is private (0700): the store, etcd's data
and the cluster secret are for this user alone."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from khala.cli.lifeline import DataDirLock, die_with_parent
from khala.cli.local_etcd import MIN_VERSION, etcd_command, etcd_version, find_etcd, wait_healthy
from khala.config import UpSettings
from khala.errors import ConfigError, SandboxUnavailable, Unavailable
from khala.rpc.auth import write_secret_file
from khala.sandbox import open_sandbox

log = logging.getLogger("khala.cli.up")

STOP_GRACE = {"gateway": 10.0, "executor": 15.0, "judicator": 10.0, "etcd": 10.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"process exited with code {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.03)
    raise Unavailable(f"nothing listening on port {port} after {seconds:.0f}s")


class Child:
    """A node: SIGTERM when `khala up` dies; it holds the data dir's lock (`lock_fd`) until it
    exits; files it creates are its user's alone (umask 077) unless `umask` says otherwise."""

    def __init__(self, role: str, argv: list[str], lock_fd: int, umask: int = 0o077) -> None:
        self.role = role
        self.argv = argv
        self.proc = subprocess.Popen(argv, start_new_session=True, pass_fds=(lock_fd,),
                                     umask=umask, preexec_fn=die_with_parent())

    def stop(self, grace: float) -> None:
        """SIGTERM; for executors a second SIGTERM halfway (drain, then force); SIGKILL last."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace / 2)
            return
        except subprocess.TimeoutExpired:
            if self.role == "executor":
                self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace / 2)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", self.role, grace)
            self.proc.kill()
            self.proc.wait()


def khala_argv(command: str, **flags: object) -> list[str]:
    argv = [sys.executable, "-m", "khala", command]
    for name, value in flags.items():
        if value is not None and value != "":
            argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


def choose_sandbox(kind: str) -> str:
    if kind == "none":
        return kind
    try:
        open_sandbox(kind).close()
        return kind
    except (SandboxUnavailable, ConfigError) as exc:
        bar = "!" * 78
        log.warning(
            "%s\nSANDBOX %r UNAVAILABLE: %s\nkhala up falls back to --sandbox=none: "
            "tasks run UNSANDBOXED as this user. Install bubblewrap for isolation.\n%s",
            bar,
            kind,
            exc,
            bar,
        )
        return "none"


class Cluster:
    def __init__(self, settings: UpSettings) -> None:
        self.settings = settings
        self.data_dir = os.path.abspath(settings.data_dir)
        self.children: list[Child] = []
        self.etcd_url = ""
        self.lock = DataDirLock(self.data_dir)

    def start(self) -> None:
        """Start every node; ConfigError if another cluster holds the data dir."""
        os.makedirs(self.data_dir, 0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # one made before this rule was 0755
        self.lock.acquire()
        self._start_etcd()
        s = self.settings
        jport = s.judicator_port or free_port()
        discovery = (
            {"etcd": self.etcd_url} if self.etcd_url else {"judicators": f"127.0.0.1:{jport}"}
        )
        common = {"log_level": s.log_level, **discovery, **self._node_auth()}
        judicator = self._spawn(
            "judicator",
            khala_argv(
                "judicator",
                listen=f"127.0.0.1:{jport}",
                name=f"judicator.{socket.gethostname()}.{os.getpid()}",  # unique: this up's
                store=f"sqlite:///{os.path.join(self.data_dir, 'khala.db')}",
                **common,
            ),
        )
        wait_port(jport, judicator.proc, 30)
        sandbox = choose_sandbox(s.sandbox)
        for index in range(s.executors):
            self._spawn(
                "executor",
                khala_argv(
                    "executor",
                    name=f"executor.{socket.gethostname()}.{os.getpid()}.{index}",
                    slots=s.slots,
                    sandbox=sandbox,
                    **common,
                ),
            )
        gateway = self._spawn(
            "gateway", khala_argv("gateway", listen=f"127.0.0.1:{s.port}", **common)
        )
        wait_port(s.port, gateway.proc, 30)
        log.info("Khala is up: http://127.0.0.1:%d/api/test  (Ctrl-C stops it)", s.port)

    def _node_auth(self) -> dict[str, str]:
        """The cluster secret every node proves (created once in the data dir)."""
        if not self.settings.node_auth:
            return {}
        path = os.path.join(self.data_dir, "cluster.secret")
        if write_secret_file(path):
            log.info("created the cluster secret %s", path)
        return {"cluster_secret_file": path}

    def _start_etcd(self) -> None:
        if self.settings.etcd == "off":
            return
        binary = find_etcd()
        version = etcd_version(binary) if binary else None
        if binary is None or version is None:
            log.warning("no working etcd found (make run builds one): using static addresses")
            return
        shown = ".".join(map(str, version))
        if version < MIN_VERSION:
            log.warning("etcd %s at %s is old (before %s): make run builds a current one",
                        shown, binary, ".".join(map(str, MIN_VERSION)))
        log.info("etcd %s (%s)", shown, binary)
        client, peer = free_port(), free_port()
        # etcd holds only what live nodes register (on leases): a fresh one each start, or the
        # keys of a cluster that was killed would be served until their leases ran out.
        etcd_dir = os.path.join(self.data_dir, "etcd")
        shutil.rmtree(etcd_dir, ignore_errors=True)
        child = self._spawn("etcd", etcd_command(binary, etcd_dir, client, peer))
        self.etcd_url = f"http://127.0.0.1:{client}"
        wait_healthy(self.etcd_url, child.proc, 30)
        log.info("etcd ready at %s", self.etcd_url)

    def _spawn(self, role: str, argv: list[str]) -> Child:
        # Executors keep the usual umask: the work dirs they lay out set their own modes.
        child = Child(role, argv, self.lock.fd, 0o022 if role == "executor" else 0o077)
        self.children.append(child)
        return child

    def failed(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self) -> None:
        order = ["gateway", "executor", "judicator", "etcd"]
        for role in order:
            group = [c for c in self.children if c.role == role]
            threads = [threading.Thread(target=c.stop, args=(STOP_GRACE[role],)) for c in group]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.lock.release()


def run(settings: UpSettings) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster = Cluster(settings)
    code = 0
    try:
        cluster.start()
        while not stop.wait(0.5):
            dead = cluster.failed()
            if dead is not None:
                log.error(
                    "%s exited with code %s; stopping the cluster", dead.role, dead.proc.returncode
                )
                code = 1
                break
    except (Unavailable, ConfigError) as exc:
        log.error("khala up failed: %s", exc)
        code = 1
    finally:
        log.info("stopping the cluster")
        cluster.stop()
    return code
