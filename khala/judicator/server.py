"""Running a judicator: store, registration, reaper and the threaded Thrift server."""

from __future__ import annotations

import logging
import signal
import threading

from khala.config import JudicatorSettings, parse_hostport
from khala.discovery import open_registration
from khala.judicator.notifier import Notifier
from khala.judicator.reaper import Reaper
from khala.judicator.scheduler import Scheduler
from khala.judicator.service import JudicatorService
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
        host, port = parse_hostport(settings.listen)
        self._rpc = RpcServer(host, port)
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

    def start(self) -> None:
        self._rpc.start(self.service)
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
