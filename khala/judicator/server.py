"""Running a judicator: store, registration, reaper and the threaded Thrift server."""

from __future__ import annotations

import logging
import signal
import threading

from khala.config import JudicatorSettings, parse_hostport
from khala.discovery import Discovery, open_discovery, open_registration
from khala.judicator.notifier import Notifier
from khala.judicator.reaper import Reaper
from khala.judicator.scheduler import Scheduler
from khala.judicator.service import JudicatorService
from khala.rpc.guard import MessageLimits
from khala.rpc.server import RpcServer
from khala.store import open_store

log = logging.getLogger(__name__)


class JudicatorServer:
    """A judicator node. `start()` returns once the port is bound; `stop()` ends it."""

    def __init__(self, settings: JudicatorSettings) -> None:
        self.settings = settings
        self.name = settings.resolved_name()
        self.store = (
            open_store(
                settings.store,
                write_concern=settings.mongo_write_concern,
                read_concern=settings.mongo_read_concern,
            )
            if settings.store.startswith("mongodb")
            else open_store(settings.store)
        )
        self.notifier = Notifier()
        # Which judicators are alive, as etcd sees them: claims of the dead are cleared at once.
        self.peers: Discovery | None = open_discovery(settings) if settings.etcd else None
        self.store.set_claimer(self.name, self._is_live)
        host, port = parse_hostport(settings.listen)
        self._rpc = RpcServer(
            host,
            port,
            MessageLimits(max_bytes=settings.rpc_max_message, max_items=settings.rpc_max_items),
            max_task_size=settings.max_task_size,
            max_connections=settings.max_connections,
        )
        self.port = self._rpc.port
        advertise = settings.advertise or f"{host}:{self.port}"
        self.registration = open_registration(settings, self.name, advertise, settings.ttl)
        self.registration.set_wake_callback(self.notifier.notify)
        self.service = JudicatorService(self.store, settings, self.notifier, self.registration)
        self.reaper = Reaper(
            self.store,
            settings.expiry,
            settings.reap_interval,
            self.registration.is_leader,
            self.notifier.notify,
        )
        self.scheduler = Scheduler(
            self.service.jobs, settings.job_pass, settings.cron_unit, self.registration.is_leader
        )

    def _is_live(self, name: str) -> bool | None:
        """Whether judicator `name` is registered; None when unknown (no etcd, or our own
        registration is missing from the view, so the view is not current)."""
        if self.peers is None:
            return None
        names = {entry.name.rsplit("/", 1)[-1] for entry in self.peers.judicators()}
        if self.name not in names:
            return None
        return name in names

    def start(self) -> None:
        self._rpc.start(self.service, on_disconnect=self.store.release_thread)
        self.registration.start()
        self.reaper.start()
        self.scheduler.start()
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
        try:
            self.registration.close()
        except Exception:
            log.warning("deregistration failed", exc_info=True)
        self._rpc.close()
        if self.peers is not None:
            self.peers.close()
        self.store.close()


def run(settings: JudicatorSettings) -> None:
    """Serve until SIGINT/SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = JudicatorServer(settings)
    server.start()
    stop.wait()
    server.stop()
