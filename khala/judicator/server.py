"""Running a judicator: store, registration, reaper and the threaded Thrift server."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from khala import model
from khala.config import JudicatorSettings, parse_hostport
from khala.discovery import open_bus, open_registration
from khala.judicator.files import file_sweeper
from khala.judicator.notifier import Notifier
from khala.judicator.ops import OpsApi
from khala.judicator.reaper import Reaper
from khala.judicator.rejudge import rejudger
from khala.judicator.scheduler import Scheduler
from khala.judicator.service import JudicatorService
from khala.judicator.webhooks import WebhookSender, task_body
from khala.metrics import serve
from khala.metrics.judicator import JudicatorMetrics
from khala.net.admission import GreetLimits
from khala.rpc.auth import NodeAuth, is_loopback
from khala.rpc.guard import MessageLimits
from khala.rpc.server import RpcServer
from khala.store import open_store
from khala.taskjson.convert import task_out  # the v2 JSON of a webhook's body

log = logging.getLogger(__name__)


class JudicatorServer:
    """A judicator node. `start()` returns once the port is bound; `stop()` ends it."""

    def __init__(self, settings: JudicatorSettings) -> None:
        self.settings = settings
        self.name = settings.resolved_name()
        self.metrics = JudicatorMetrics()
        store = open_store(settings.store, write_concern=settings.mongo_write_concern,
                           read_concern=settings.mongo_read_concern,
                           bodies_apart=settings.mongo_bodies_apart)
        self.store = self.metrics.store(store)  # every store call timed (khala/metrics)
        self.ops_store = store.ops  # on the same connections
        self.notifier = Notifier()
        host, port = parse_hostport(settings.listen)
        auth = NodeAuth.from_file(settings.cluster_secret_file)
        if auth is None and not is_loopback(host):
            log.warning("node authentication is OFF: anyone who reaches %s can act as an "
                        "executor (set cluster_secret_file, docs/security.md)", settings.listen)
        self._rpc = RpcServer(
            host,
            port,
            MessageLimits(max_bytes=settings.rpc_max_message, max_items=settings.rpc_max_items),
            max_task_size=settings.max_task_size,
            max_connections=settings.max_connections,
            auth=auth,
            handshake=GreetLimits(settings.handshake_timeout, settings.handshake_limit,
                                  settings.handshake_per_peer),
        )
        self.port = self._rpc.port
        advertise = settings.advertise or f"{host}:{self.port}"
        self.registration = open_registration(settings, self.name, advertise, settings.ttl)
        self.bus = open_bus(settings, self.name)
        self.bus.on_wake(self.notifier.notify)
        self.service = JudicatorService(self.store, settings, self.notifier, self.bus)
        is_leader = self.metrics.watch_leader(self.registration.is_leader)
        self.reaper = Reaper(
            self.store,
            settings.expiry,
            settings.reap_interval,
            is_leader,
            self.service.announce,  # requeued work: wake long-polls on every judicator
        )
        self.scheduler = Scheduler(
            self.service.jobs, settings.job_pass, settings.cron_unit, is_leader
        )
        self.file_sweep = file_sweeper(self.service.files, self.store.sweep_bodies, is_leader)
        self.rejudger = rejudger(self.service.rejudges, is_leader)
        self._wire_ops(settings, is_leader)
        self._metrics_server: Any = None

    def _wire_ops(self, settings: JudicatorSettings, is_leader: Callable[[], bool]) -> None:
        """Executor statistics, webhooks and metrics (docs/security.md, docs/operations.md)."""
        ops = OpsApi(self.ops_store, settings.expiry, settings.webhook_allow_internal)
        self.service.ops = self.service.tasks.ops = ops
        store = self.store

        def render(task_id: str) -> bytes | None:
            """The POSTed document: the task's v2 JSON, without its own delivery record."""
            task = store.get(task_id)
            if task is None:
                return None
            task = ops.attach(task)
            task.webhook = None
            return task_body(task_out(task).model_dump(mode="json"))

        def is_done(task_id: str) -> bool:
            task = store.get(task_id)
            return task is None or task.done

        self.webhooks = WebhookSender(self.ops_store, render, is_done, is_leader, settings,
                                      flush=ops.flush_finished)
        ops.on_ready = self.webhooks.poke
        self.metrics.watch_cluster(
            self.ops_store.queue_length, ops.live_stats,
            lambda: len(store.executors(model.time_before(settings.expiry))))

    def start(self) -> None:
        self._rpc.start(self.service, on_disconnect=self.store.release_thread,
                        wrap=self.metrics.handler)
        self.registration.start()
        self.bus.start()
        self.reaper.start()
        self.scheduler.start()
        self.file_sweep.start()
        self.rejudger.start()
        self.webhooks.start()
        self._metrics_server = serve(self.settings.metrics_listen, self.metrics.registry)
        log.info(
            "judicator %s serving on %s:%d (store %s)",
            self.name,
            self.settings.listen.rsplit(":", 1)[0],
            self.port,
            self.settings.store,
        )

    def stop(self) -> None:
        log.info("judicator %s stopping", self.name)
        self._rpc.stop()
        self.reaper.stop()
        self.scheduler.stop()
        self.file_sweep.stop()
        self.rejudger.stop()
        self.webhooks.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        try:
            self.registration.close()
        except Exception:
            log.warning("deregistration failed", exc_info=True)
        self.bus.close()
        self._rpc.close()
        self.store.close()


def run(settings: JudicatorSettings) -> None:
    """Serve until SIGINT/SIGTERM."""
    os.umask(0o077)  # what it creates (a SQLite store, its WAL) is for this user alone
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = JudicatorServer(settings)
    server.start()
    stop.wait()
    server.stop()
