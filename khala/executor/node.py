"""An executor node: its parts wired from its settings (sandbox, judicator client, slots, report
loop), and `run()`, the `khala executor` command with its signal handling."""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import tempfile
import threading

from khala.config import ExecutorSettings
from khala.discovery import open_discovery
from khala.discovery.base import Discovery
from khala.errors import ConfigError, SandboxUnavailable
from khala.executor.reporter import Reporter
from khala.executor.runner import run_task
from khala.executor.slots import Slots
from khala.metrics import serve
from khala.metrics.executor import ExecutorMetrics
from khala.rpc.auth import NodeAuth
from khala.rpc.client import JudicatorClient
from khala.sandbox import Sandbox, open_sandbox

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

UNSAFE_WARNING = (
    "RUNNING WITHOUT A SANDBOX (--sandbox=none): submitted programs run as this user with full "
    "access to this machine and its network. Use only for trusted code."
)


class ExecutorNode:
    """Slots that run tasks in `sandbox` and the report loop that feeds them. `run()` returns
    once a stop (`drain()`, then maybe `force()`) has finished."""

    def __init__(self, settings: ExecutorSettings, sandbox: Sandbox, discovery: Discovery) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.name = settings.resolved_name()
        # The executor's name is its rendezvous key: executors spread over the judicators.
        self.client = JudicatorClient(
            discovery, settings.rpc_timeout, key=self.name,
            auth=NodeAuth.from_file(settings.cluster_secret_file),  # docs/security.md
        )
        self.slots = Slots(
            self.name,
            settings.resolved_slots(),
            lambda task, cancel, on_status, signals: run_task(
                task, sandbox, settings, cancel, on_status, signals
            ),
            on_change=lambda: self.reporter.poke(),
        )
        self.reporter = Reporter(
            self.name,
            self.client,
            self.slots,
            heartbeat=settings.heartbeat,
            rpc_timeout=settings.rpc_timeout,
            stop_grace=settings.stop_grace,
        )

    @property
    def capacity(self) -> int:
        return self.slots.capacity

    def run(self) -> None:
        self.reporter.run()

    def drain(self) -> None:
        self.reporter.drain()

    def force(self) -> None:
        self.reporter.force()

    def close(self) -> None:
        self.client.close()
        self.sandbox.close()


def handle_stop_signals(node: ExecutorNode) -> None:
    """Warm, then cold: the first SIGTERM/SIGINT drains and rebinds both signals to force, so
    a second one kills running tasks at once."""

    def force(signum: int, _frame: object) -> None:
        node.force()

    def drain(signum: int, _frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, force)
        log.info("signal %d: draining; another one forces", signum)
        node.drain()

    for sig in STOP_SIGNALS:
        signal.signal(sig, drain)


def wait_taking_signals(thread: threading.Thread) -> None:
    """Wait for `thread` in the main thread, running signal handlers at once. The kernel may
    deliver a signal to any thread, and Python runs the handler only when the main thread next
    runs bytecode: a plain join(timeout) would delay a drain by up to its timeout (while the
    report loop kept taking work). A wakeup fd makes the main thread's select return at once."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        while thread.is_alive():
            select.select([read_fd], [], [], 0.5)
            try:
                os.read(read_fd, 512)
            except BlockingIOError:
                pass
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)


def check_work_dir(work_dir: str, sandbox: Sandbox) -> None:
    """Create the work root and make sure the sandbox can use a directory inside it."""
    if not work_dir:
        return  # a fresh temporary directory per task
    os.makedirs(work_dir, exist_ok=True)
    os.chmod(work_dir, 0o711)
    probe = tempfile.mkdtemp(prefix="khala-probe-", dir=work_dir)
    try:
        sandbox.prepare_workdir(probe)
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def open_checked_sandbox(settings: ExecutorSettings) -> Sandbox | None:
    """The configured sandbox with a usable work dir, or None (logged) when it cannot be."""
    try:
        sandbox = open_sandbox(settings.sandbox,
                               warm=settings.warm_sandboxes * settings.resolved_slots())
    except (SandboxUnavailable, ConfigError) as exc:
        log.error(
            "cannot start executor: %s. Install bubblewrap and make cgroups writable, or "
            "run with --sandbox=none to accept running tasks unsandboxed.",
            exc,
        )
        return None
    if settings.sandbox == "none":
        log.warning(UNSAFE_WARNING)
    try:
        check_work_dir(settings.work_dir, sandbox)
    except (SandboxUnavailable, OSError) as exc:
        log.error("cannot start executor: work dir %r unusable: %s", settings.work_dir, exc)
        sandbox.close()
        return None
    return sandbox


def run(settings: ExecutorSettings) -> int:
    """Run until stopped (first SIGTERM/SIGINT drains, a second one forces). Returns an exit
    code: 2 when the sandbox cannot be set up."""
    sandbox = open_checked_sandbox(settings)
    if sandbox is None:
        return 2
    discovery = open_discovery(settings)
    metrics = ExecutorMetrics()  # docs/operations.md, Metrics
    node = ExecutorNode(settings, metrics.sandbox(sandbox), discovery)
    metrics.watch_slots(node.capacity, node.slots.running)
    metrics_server = serve(settings.metrics_listen, metrics.registry)
    handle_stop_signals(node)
    log.info("executor %s: %d slot(s), sandbox %s", node.name, node.capacity, sandbox.name)
    loop = threading.Thread(target=node.run, name="khala-report-loop")
    loop.start()
    wait_taking_signals(loop)
    node.close()
    discovery.close()
    if metrics_server is not None:
        metrics_server.shutdown()
    log.info("executor %s stopped", node.name)
    return 0
