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
from khala.executor.compile_cache import CompileCache
from khala.executor.filecache import FileCache
from khala.executor.image_languages import prepare
from khala.executor.images import ImageRoots
from khala.executor.judge import JudgeContext, features, run_any
from khala.executor.languages import detect, wanted
from khala.executor.outputs import keep_large
from khala.executor.problems import ProblemTasks
from khala.executor.reporter import Reporter
from khala.executor.slots import Slots
from khala.executor.streaming import Streams
from khala.executor.workareas import WorkAreas
from khala.files.transfer import receive
from khala.judging.presets import HostLanguage
from khala.metrics import serve
from khala.metrics.executor import ExecutorMetrics
from khala.model import Language, Result
from khala.rpc.auth import NodeAuth
from khala.rpc.client import JudicatorClient
from khala.sandbox import Sandbox, open_sandbox
from khala.sandbox.bwrap import SANDBOX_UID, traversable
from khala.sandbox.fstree import remove_tree
from khala.sandbox.network import NetworkPolicy

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

UNSAFE_WARNING = (
    "RUNNING WITHOUT A SANDBOX (--sandbox=none): submitted programs run as this user with full "
    "access to this machine and its network. Use only for trusted code."
)


class ExecutorNode:
    """Slots that run tasks in `sandbox` and the report loop that feeds them. `run()` returns
    once a stop (`drain()`, then maybe `force()`) has finished."""

    def __init__(self, settings: ExecutorSettings, sandbox: Sandbox, discovery: Discovery,
                 judging: JudgeContext | None = None) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.name = settings.resolved_name()
        # Judging (docs/judging.md): languages (detected later), compile cache, lent slots.
        self.judging = judging or JudgeContext({}, CompileCache("", 0))
        context = self.judging
        # The executor's name is its rendezvous key: executors spread over the judicators.
        self.client = JudicatorClient(
            discovery, settings.rpc_timeout, key=self.name,
            auth=NodeAuth.from_file(settings.cluster_secret_file),  # docs/security.md
        )
        self.streams = Streams(settings, self.name)  # live output endpoint
        # Plain tasks' work dirs, one per slot made ahead and removed off the slot's path.
        self.areas = WorkAreas(sandbox, settings, settings.resolved_slots())
        areas = self.areas
        self.slots = Slots(
            self.name,
            settings.resolved_slots(),
            lambda task, cancel, on_status, signals: self._stored(self.streams.run(
                task, on_status,
                lambda stream, status_cb: run_any(
                    task, sandbox, settings, context, cancel, status_cb, signals, stream,
                    areas),
            )),
            on_change=lambda: self.reporter.poke(),
            progress_delay=settings.progress_delay,
            on_finish=lambda: self.reporter.poke(finished=True),
        )
        self.reporter = Reporter(
            self.name,
            self.client,
            self.slots,
            heartbeat=settings.heartbeat,
            rpc_timeout=settings.rpc_timeout,
            stop_grace=settings.stop_grace,
            ahead=settings.ahead,
            expiry=settings.expiry,
        )
        self.reporter.features = features(sandbox, context)
        context.slots = self.slots  # a judged task's cases may borrow free slots
        if context.problems is not None:  # stored problems' files come from the judicators
            client = self.client
            context.problems.cache.fetch = lambda ref, fh: receive(client, ref, fh.write)

    def _stored(self, outcome: tuple[int, Result]) -> tuple[int, Result]:
        """The result with its large streams kept as files (khala/executor/outputs.py)."""
        status, result = outcome
        return status, keep_large(result, self.client, self.settings.result_inline)

    def offer_languages(self, found: dict[str, HostLanguage],
                        in_images: list[Language] | None = None) -> None:
        """Offer the presets `found` (and those of the images in the `images` setting) from the
        next report on (detection ends after start)."""
        self.judging.languages = dict(found)
        self.reporter.languages = [Language(h.name, h.version, source=h.preset.source,
                                            time_factor=h.preset.time_factor)
                                   for h in found.values()] + list(in_images or [])
        self.reporter.poke()  # report them now, ending a long-poll that holds the old list

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
        if self.judging.problems is not None:
            self.judging.problems.cache.close()
        self.areas.close()
        self.streams.close()
        self.client.close()
        self.sandbox.close()


def handle_stop_signals(node: ExecutorNode) -> None:
    """Warm, then cold: the first SIGTERM/SIGINT drains and rebinds both signals to force, so
    a second one kills running tasks at once. An executor whose parent is gone (`khala up`
    died, and the kernel signalled its nodes) forces at once: no one will send the second."""
    parent = os.getppid()

    def force(signum: int, _frame: object) -> None:
        node.force()

    def drain(signum: int, _frame: object) -> None:
        if os.getppid() != parent:
            log.info("signal %d and the parent process is gone: stopping now", signum)
            node.force()
            return
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


def _cache_root(configured: str, work_dir: str, name: str) -> tuple[str, str]:
    """(the cache directory, the same when it is temporary: removed at exit, else "")."""
    if configured:
        return configured, ""
    if work_dir:
        return os.path.join(work_dir, f".{name}"), ""
    temporary = tempfile.mkdtemp(prefix=f"khala-{name}-")
    return temporary, temporary


def open_judging(settings: ExecutorSettings) -> tuple[JudgeContext, list[str]]:
    """The compile cache, the file cache of stored problems and images, the unpacked images,
    and no languages yet
    (`detect_later` fills them in); returns the context and the cache directories to remove at
    exit (temporary ones). ConfigError for an unknown preset in `languages` or a file cache
    another executor uses, OSError for an unusable cache directory."""
    wanted(settings.languages)  # refuse an unknown preset now, not in the background
    root, compile_tmp = _cache_root(settings.cache_dir, settings.work_dir, "compile-cache")
    files_root, files_tmp = _cache_root(settings.file_cache_dir, settings.work_dir,
                                        "file-cache")
    files = FileCache(files_root, settings.file_cache_bytes)
    images_root, images_tmp = _cache_root(settings.image_dir, settings.work_dir, "images")
    if images_tmp:  # the sandbox user reaches an image through it
        os.chmod(images_tmp, 0o711)
    images = ImageRoots(images_root, settings.image_bytes, files)
    if not traversable(os.path.join(images_root, "x"), SANDBOX_UID):
        images.close()
        raise ConfigError(f"image_dir {images_root}: the sandbox user cannot reach it (every "
                          "directory above it must be searchable by others, mode o+x)")
    context = JudgeContext({}, CompileCache(root, settings.cache_bytes),
                           problems=ProblemTasks(files),
                           images=images)
    return context, [path for path in (compile_tmp, files_tmp, images_tmp) if path]


def detect_later(settings: ExecutorSettings, node: ExecutorNode) -> threading.Thread:
    """Detect the host's languages in the background: the node reports (and runs tasks without
    a language) at once and offers its languages from the report after detection."""

    def work() -> None:
        try:
            found = detect(settings.languages)
            node.offer_languages(found)
            names = [n.strip() for n in settings.images.split(",") if n.strip()]
            context = node.judging
            if names and context.images is not None and node.sandbox.name == "bwrap":
                node.offer_languages(found, prepare(
                    names, node.client, context.images, context.image_languages,
                    node.reporter.draining))
            elif names:
                log.error("images %s: a step in an image needs the bwrap sandbox", names)
        except Exception:  # a broken probe must not kill the node: it offers no language
            log.exception("language detection failed; offering no language")

    thread = threading.Thread(target=work, name="khala-languages", daemon=True)
    thread.start()
    return thread


def open_checked_sandbox(settings: ExecutorSettings) -> Sandbox | None:
    """The configured sandbox with a usable work dir, or None (logged) when it cannot be."""
    try:
        network = NetworkPolicy.parse(settings.allow_network, settings.network_deny)
        sandbox = open_sandbox(settings.sandbox,
                               warm=settings.warm_sandboxes * settings.resolved_slots(),
                               network=network, warm_images=settings.warm_images,
                               warm_idle=settings.warm_image_idle)
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
    code: 2 when the sandbox cannot be set up or a setting is out of range."""
    if settings.ahead < 0:
        log.error("cannot start executor: ahead must be 0 or more, not %d", settings.ahead)
        return 2
    sandbox = open_checked_sandbox(settings)
    if sandbox is None:
        return 2
    try:
        judging, cache_tmp = open_judging(settings)
    except (ConfigError, OSError) as exc:
        log.error("cannot start executor: %s", exc)
        sandbox.close()
        return 2
    discovery = open_discovery(settings)
    metrics = ExecutorMetrics()  # docs/operations.md, Metrics
    node = ExecutorNode(settings, metrics.sandbox(sandbox), discovery, judging)
    detect_later(settings, node)
    metrics.watch_slots(node.capacity, node.slots.running)
    if judging.problems is not None:
        metrics.watch_file_cache(judging.problems.cache.counts,
                                 lambda: judging.problems.cache.size)  # type: ignore[union-attr]
    images = judging.images
    if images is not None:
        metrics.watch_images(images.counts, lambda: images.size)
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
    for path in cache_tmp:
        remove_tree(path)
    log.info("executor %s stopped", node.name)
    return 0
