"""Starting an executor node from its settings: sandbox check, discovery, signals."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading

from khala.config import ExecutorSettings
from khala.discovery import open_discovery
from khala.errors import ConfigError, SandboxUnavailable
from khala.executor.compile_cache import CompileCache
from khala.executor.judge import JudgeContext
from khala.executor.languages import detect, wanted
from khala.executor.worker import ExecutorNode
from khala.sandbox import Sandbox, open_sandbox
from khala.sandbox.fstree import remove_tree

log = logging.getLogger(__name__)

UNSAFE_WARNING = (
    "RUNNING WITHOUT A SANDBOX (--sandbox=none): submitted programs run as this user with full "
    "access to this machine and its network. Use only for trusted code."
)


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


def open_judging(settings: ExecutorSettings) -> tuple[JudgeContext, str]:
    """The compile cache, and no languages yet (`detect_later` fills them in); returns the
    context and a cache directory to remove at exit ("" when the cache is kept). ConfigError
    for an unknown preset in `languages`, OSError for an unusable cache directory."""
    wanted(settings.languages)  # refuse an unknown preset now, not in the background
    root, temporary = settings.cache_dir, ""
    if not root and settings.work_dir:
        root = os.path.join(settings.work_dir, ".compile-cache")
    if not root:
        root = temporary = tempfile.mkdtemp(prefix="khala-compile-cache-")
    return JudgeContext({}, CompileCache(root, settings.cache_bytes)), temporary


def detect_later(settings: ExecutorSettings, node: ExecutorNode) -> threading.Thread:
    """Detect the host's languages in the background: the node reports (and runs tasks without
    a language) at once and offers its languages from the report after detection."""

    def work() -> None:
        try:
            node.offer_languages(detect(settings.languages))
        except Exception:  # a broken probe must not kill the node: it offers no language
            log.exception("language detection failed; offering no language")

    thread = threading.Thread(target=work, name="khala-languages", daemon=True)
    thread.start()
    return thread


def run(settings: ExecutorSettings) -> int:
    """Run until drained. First SIGTERM/SIGINT drains, a second one forces. Returns an exit
    code: 2 when the sandbox cannot be set up."""
    try:
        sandbox = open_sandbox(settings.sandbox)
    except (SandboxUnavailable, ConfigError) as exc:
        log.error(
            "cannot start executor: %s. Install bubblewrap and make cgroups writable, or "
            "run with --sandbox=none to accept running tasks unsandboxed.",
            exc,
        )
        return 2
    if settings.sandbox == "none":
        log.warning(UNSAFE_WARNING)
    try:
        check_work_dir(settings.work_dir, sandbox)
    except (SandboxUnavailable, OSError) as exc:
        log.error("cannot start executor: work dir %r unusable: %s", settings.work_dir, exc)
        sandbox.close()
        return 2
    try:
        judging, cache_tmp = open_judging(settings)
    except (ConfigError, OSError) as exc:
        log.error("cannot start executor: %s", exc)
        sandbox.close()
        return 2
    discovery = open_discovery(settings)
    node = ExecutorNode(settings, sandbox, discovery, judging)
    detect_later(settings, node)
    signals = {"count": 0}

    def on_signal(*_: object) -> None:
        signals["count"] += 1
        if signals["count"] == 1:
            node.drain()
        else:
            node.force()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    log.info("executor %s: %d slot(s), sandbox %s", node.name, node.capacity, sandbox.name)
    runner = threading.Thread(target=node.run, name="khala-report-loop")
    runner.start()
    while runner.is_alive():
        runner.join(0.5)
    node.close()
    discovery.close()
    if cache_tmp:
        remove_tree(cache_tmp)
    log.info("executor %s stopped", node.name)
    return 0
