"""The executor's side of live output: its stream endpoint and its registration in
etcd, opened from the settings, and the few calls the slots make. Disabled (every call a no-op)
with `stream_listen = "off"`."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from khala.config import ExecutorSettings
from khala.model import Result, Status, Task
from khala.net.admission import GreetLimits
from khala.rpc.auth import NodeAuth, is_loopback
from khala.streams.hub import StreamHub, TaskStream
from khala.streams.registry import EndpointRegistration, registry_of

log = logging.getLogger(__name__)


WILDCARDS = {"0.0.0.0", "::", ""}


ROUTE_PROBE = ("192.0.2.1", 9)  # TEST-NET-1: a UDP "connect" picks a route, sends nothing


def advertised(listen: str) -> str:
    """The address gateways can reach a HOST:PORT endpoint at: a wildcard host (every address
    of this machine, as in a container) becomes this host's own address: the source address of
    its default route (a container's address on its network), else what its name resolves to."""
    host, _, port = listen.rpartition(":")
    if host.strip("[]") not in WILDCARDS:
        return listen
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(ROUTE_PROBE)
            own = str(probe.getsockname()[0])
    except OSError:  # no route out: the name's address
        own = socket.gethostbyname(socket.gethostname())
    return f"{own}:{port}"


class Streams:
    def __init__(self, settings: ExecutorSettings, name: str) -> None:
        self.hub: StreamHub | None = None
        self._registration: EndpointRegistration | None = None
        if settings.stream_listen == "off":
            return
        auth = NodeAuth.from_file(settings.cluster_secret_file)
        host = settings.stream_listen.rpartition(":")[0].strip("[]") or "127.0.0.1"
        if auth is None and not is_loopback(host):
            log.warning("the stream endpoint %s has no node authentication: anyone who reaches "
                        "it reads running tasks' output and types into them (set "
                        "cluster_secret_file, docs/security.md)", settings.stream_listen)
        self.hub = StreamHub(settings.stream_listen, settings.stream_buffer,
                             settings.stream_input, settings.stream_clients, auth=auth,
                             handshake=GreetLimits(settings.stream_handshake_timeout,
                                                   settings.stream_handshake_limit,
                                                   settings.stream_handshake_per_peer))
        self.hub.start()
        address = settings.stream_advertise or advertised(self.hub.address)
        log.info("executor %s: live output on %s", name, address)
        if registry_of(settings):
            self._registration = EndpointRegistration(settings, name, address)
            self._registration.start()

    def run(self, task: Task, on_status: Callable[[int], None],
            runner: Callable[[TaskStream | None, Callable[[int], None]],
                             tuple[int, Result]]) -> tuple[int, Result]:
        """Run `task` with `runner(stream, on_status)`, its live stream open around it."""
        stream = self.open(task)
        self.status(task.id, Status.COMPILING)

        def status(value: int) -> None:
            self.status(task.id, value)
            on_status(value)

        final = int(Status.UNKNOWN_ERROR)
        try:
            final, result = runner(stream, status)
            return final, result
        finally:
            self.finish(task.id, final)

    def open(self, task: Task | None) -> TaskStream | None:
        if self.hub is None or task is None:
            return None
        e = task.execute
        return self.hub.open(task.id, e.interactive, e.input.encode() if e.interactive else b"")

    def status(self, task_id: str, status: int) -> None:
        stream = self.hub.get(task_id) if self.hub is not None else None
        if stream is not None:
            stream.log.set_status(status)

    def finish(self, task_id: str, status: int) -> None:
        if self.hub is not None:
            self.hub.finish(task_id, status)

    def close(self) -> None:
        if self._registration is not None:
            self._registration.close()
        if self.hub is not None:
            self.hub.close()
