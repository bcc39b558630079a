"""etcd v3 discovery, registration and leader election, over etcd's HTTP gateway (etcd3gw).

Keys under the prefix P (default /khala):
    P/judicators/<name>  → HOST:PORT   on the judicator's lease: gone within the TTL of a death
    P/leader             → <name>      created only if absent (create_revision == 0), on the lease
    P/wake               → <name>\\n<t> written when a judicator queued work or cancelled or
                           signalled a task; the others wake their report long-polls
    P/finished           → <name>\\n<id>,<id>… (or *) tasks a judicator recorded done; others
                           wake their API v2 waiters for those ids

Every thread here is a daemon with a stop flag, every wait is bounded, reconnects are loops with
a bounded backoff that fail over between the endpoints, never recursion.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception
from etcd3gw.lease import Lease
from etcd3gw.utils import _decode, _encode, _increment_last_byte

from khala.discovery.base import Discovery, JudicatorEntry, Registration
from khala.errors import ConfigError

log = logging.getLogger(__name__)

API_PATH = "/v3/"  # etcd ≥ 3.4; set so that no /version round trip precedes the first call
REQUEST_TIMEOUT = 3.0  # seconds for one unary etcd call (list, put, txn, revoke)
WATCH_IDLE = 10.0  # a watch stream silent this long is re-opened (and the list re-read)
FIRST_LIST_WAIT = 3.0  # EtcdDiscovery() waits this long for its first list
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0
ERRORS = (Etcd3Exception, requests.RequestException, OSError, ValueError, KeyError, TypeError)


def _client(endpoint: str, timeout: float) -> Etcd3Client:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parts.scheme not in {"http", "https"} or not parts.hostname or not parts.port:
        raise ConfigError(f"etcd endpoint {endpoint!r} is not http://HOST:PORT")
    return Etcd3Client(
        host=parts.hostname, port=parts.port, protocol=parts.scheme, timeout=timeout,
        api_path=API_PATH,
    )


class _Pool:
    """One client per endpoint, for one thread; `rotate()` fails over to the next endpoint."""

    def __init__(self, endpoints: list[str], timeout: float) -> None:
        if not endpoints:
            raise ConfigError("no etcd endpoints given")
        self._clients = [_client(e, timeout) for e in endpoints]
        self._index = 0

    @property
    def client(self) -> Etcd3Client:
        return self._clients[self._index]

    def rotate(self) -> None:
        self._index = (self._index + 1) % len(self._clients)

    def close(self) -> None:
        for client in self._clients:
            client.session.close()


class _Backoff:
    def __init__(self) -> None:
        self._delay = BACKOFF_FIRST

    def reset(self) -> None:
        self._delay = BACKOFF_FIRST

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self._delay)
        self._delay = min(self._delay * 2, BACKOFF_MAX)


class _PrefixWatch:
    """Lists every key under a prefix, then follows its changes with a watch stream from the
    next revision. Any failure re-lists from the next endpoint after a backoff."""

    def __init__(
        self,
        endpoints: list[str],
        prefix: str,
        on_reset: Callable[[dict[str, dict[str, Any]]], None],
        on_event: Callable[[str, dict[str, Any] | None], None],
    ) -> None:
        self._pool = _Pool(endpoints, REQUEST_TIMEOUT)
        self._prefix = prefix
        self._on_reset = on_reset
        self._on_event = on_event
        self._stop = threading.Event()
        self._response: requests.Response | None = None
        self._thread = threading.Thread(target=self._run, name=f"etcd-watch {prefix}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            _shutdown(response)
        self._thread.join(REQUEST_TIMEOUT + 1)
        self._pool.close()

    def _run(self) -> None:
        backoff = _Backoff()
        while not self._stop.is_set():
            try:
                revision = self._list()
                backoff.reset()
                self._follow(revision + 1)
            except ERRORS as exc:
                if not self._stop.is_set():
                    log.debug("etcd watch of %s broke: %s", self._prefix, _describe(exc))
                    self._pool.rotate()
            backoff.wait(self._stop)

    def _list(self) -> int:
        client = self._pool.client
        reply = client.post(
            client.get_url("/kv/range"),
            json={"key": _encode(self._prefix), "range_end": _encode(_range_end(self._prefix))},
        )
        entries = {
            _decode(kv["key"]).decode(): {**kv, "value": _decode(kv.get("value", ""))}
            for kv in reply.get("kvs", [])
        }
        self._on_reset(entries)
        return int(reply["header"]["revision"])

    def _follow(self, start_revision: int) -> None:
        client = self._pool.client
        request: dict[str, Any] = {"create_request": {
            "key": _encode(self._prefix), "range_end": _encode(_range_end(self._prefix)),
            "start_revision": start_revision,
        }}
        response = client.session.post(
            client.get_url("/watch"), json=request, stream=True,
            timeout=(REQUEST_TIMEOUT, WATCH_IDLE),
        )
        self._response = response
        try:
            response.raise_for_status()
            # chunk_size None: hand over each chunk as it arrives (typeshed wants an int)
            for line in response.iter_lines(chunk_size=None):  # type: ignore[call-overload]
                if self._stop.is_set() or not self._handle(line):
                    return
        finally:
            self._response = None
            response.close()

    def _handle(self, line: bytes) -> bool:
        """One chunk of the watch stream; False when the watch must be re-created."""
        if not line.strip():
            return True
        result = json.loads(line).get("result", {})
        if result.get("canceled") or "compact_revision" in result:
            return False
        for event in result.get("events", []):
            kv = event["kv"]
            key = _decode(kv["key"]).decode()
            if event.get("type") == "DELETE":
                self._on_event(key, None)
            else:
                self._on_event(key, {**kv, "value": _decode(kv.get("value", ""))})
        return True


def _describe(exc: BaseException) -> str:
    """etcd3gw exceptions keep their text in `detail_text`; str() of them is often empty."""
    detail = getattr(exc, "detail_text", None) or str(exc)
    return f"{type(exc).__name__}: {detail}".strip()


def _range_end(prefix: str) -> str:
    return _increment_last_byte(prefix)


def _shutdown(response: requests.Response) -> None:
    """Unblock a thread reading a stream (as etcd3gw's Watcher.stop does)."""
    try:
        sock = socket.fromfd(response.raw.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    except (OSError, ValueError, AttributeError):
        pass  # already closed: nothing to unblock


# ----------------------------------------------------------------------------- discovery


class EtcdDiscovery(Discovery):
    """The live judicators under `<prefix>/judicators/`, kept current by a watch."""

    def __init__(self, endpoints: list[str], prefix: str) -> None:
        self._key = f"{prefix.rstrip('/')}/judicators/"
        self._lock = threading.Lock()
        self._entries: dict[str, str] = {}
        self._listed = threading.Event()
        self._watch = _PrefixWatch(endpoints, self._key, self._reset, self._event)
        self._watch.start()
        self._listed.wait(FIRST_LIST_WAIT)

    def judicators(self) -> list[JudicatorEntry]:
        with self._lock:
            return [JudicatorEntry(name=k, address=v) for k, v in sorted(self._entries.items())]

    def close(self) -> None:
        self._watch.stop()

    def _reset(self, entries: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self._entries = {k: kv["value"].decode() for k, kv in entries.items()}
        self._listed.set()

    def _event(self, key: str, kv: dict[str, Any] | None) -> None:
        with self._lock:
            if kv is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = kv["value"].decode()


# ----------------------------------------------------------------------------- registration


class EtcdRegistration(Registration):
    """A judicator's key on a lease kept alive every ttl/3, and its campaign for leadership."""

    def __init__(
        self, endpoints: list[str], prefix: str, name: str, address: str, ttl: int
    ) -> None:
        if ttl < 2:
            raise ConfigError(f"etcd lease TTL must be at least 2 seconds, not {ttl}")
        base = prefix.rstrip("/")
        self._endpoints = endpoints
        self._name = name
        self._address = address
        self._ttl = int(ttl)
        self._interval = ttl / 3
        self._trust = ttl - ttl / 3  # leadership holds this long after a keepalive was sent
        self._key = f"{base}/judicators/{name}"
        self._leader_key = f"{base}/leader"
        self._wake_key = f"{base}/wake"
        self._finished_callback: Callable[[list[str] | None], object] | None = None
        self._lease_id: int | None = None
        self._leader = False
        self._alive_at = 0.0  # monotonic send time of the last successful grant/keepalive
        self._callback: Callable[[], object] | None = None
        self._members_prefix = f"{base}/judicators/"
        self._others: set[str] | None = None  # other judicators' keys; None: not listed yet
        from khala.discovery.announce import Announcer  # it imports this module's helpers

        self._announcer = Announcer(endpoints, name, self._wake_key, f"{base}/finished",
                                    self._alone)
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._paused = threading.Event()
        self._pool = _Pool(endpoints, min(REQUEST_TIMEOUT, max(0.5, ttl / 4)))
        self._thread = threading.Thread(target=self._run, name=f"etcd-lease {name}", daemon=True)
        self._watch = _PrefixWatch(endpoints, f"{base}/", self._on_reset, self._on_event)
        self._watched_once = False

    # ------------------------------------------------------------------ Registration

    def start(self) -> None:
        self._thread.start()
        self._announcer.start()
        self._watch.start()

    def is_leader(self) -> bool:
        return self._leader and time.monotonic() - self._alive_at < self._trust

    def notify_added(self) -> None:
        self._announcer.wake()

    def set_wake_callback(self, callback: object) -> None:
        if callback is not None and not callable(callback):
            raise TypeError("wake callback must be callable")
        self._callback = callback

    def notify_finished(self, task_ids: list[str]) -> None:
        self._announcer.finished(task_ids)

    def set_finished_callback(self, callback: object) -> None:
        if callback is not None and not callable(callback):
            raise TypeError("finished callback must be callable")
        self._finished_callback = callback

    def close(self) -> None:
        self._stop.set()
        self._kick.set()
        self._thread.join(REQUEST_TIMEOUT + 1)
        self._announcer.stop()
        self._watch.stop()
        self._leader = False
        lease_id, self._lease_id = self._lease_id, None
        if lease_id is not None:
            self._revoke(lease_id)
        self._pool.close()

    def pause_keepalives(self, paused: bool) -> None:
        """Test hook: stop (or resume) keepalives without revoking, as a stalled judicator."""
        if paused:
            self._paused.set()
        else:
            self._paused.clear()
        self._kick.set()

    # ------------------------------------------------------------------ keepalive thread

    def _run(self) -> None:
        backoff = _Backoff()
        while not self._stop.is_set():
            try:
                if not self._paused.is_set():
                    self._keep_alive()
                    self._campaign()
                backoff.reset()
                self._kick.wait(self._interval)
                self._kick.clear()
            except ERRORS as exc:
                log.warning("etcd keepalive of %s failed: %s", self._name, _describe(exc))
                self._pool.rotate()
                backoff.wait(self._stop)

    def _keep_alive(self) -> None:
        sent = time.monotonic()
        if self._lease_id is not None:
            if Lease(self._lease_id, self._pool.client).refresh() > 0:
                self._alive_at = sent
                return
            log.warning("etcd lease of %s was lost; registering again", self._name)
            self._lease_id = None
            self._leader = False
        lease = self._pool.client.lease(self._ttl)
        self._pool.client.put(self._key, self._address, lease=lease)
        self._lease_id = lease.id
        self._alive_at = sent

    def _campaign(self) -> None:
        """Create the leader key on our lease if it does not exist; else see whose it is."""
        lease_id = self._lease_id
        if lease_id is None:
            return
        key = _encode(self._leader_key)
        reply = self._pool.client.transaction({
            "compare": [{"key": key, "result": "EQUAL", "target": "CREATE",
                         "create_revision": 0}],
            "success": [{"request_put": {"key": key, "value": _encode(self._name),
                                         "lease": lease_id}}],
            "failure": [{"request_range": {"key": key}}],
        })
        if reply.get("succeeded"):
            leader = True
        else:
            kvs = reply["responses"][0]["response_range"].get("kvs", [])
            leader = bool(kvs) and int(kvs[0].get("lease", 0)) == lease_id
        if leader and not self._leader:
            log.info("judicator %s is now the leader", self._name)
        self._leader = leader

    def _revoke(self, lease_id: int) -> None:
        for _ in range(len(self._endpoints)):
            try:
                Lease(lease_id, self._pool.client).revoke()
                return
            except ERRORS as exc:
                log.warning("revoking the etcd lease of %s failed: %s", self._name, _describe(exc))
                self._pool.rotate()

    # ------------------------------------------------------------------ watch thread

    def _alone(self) -> bool:
        """Whether the watch shows no other judicator (then there is nobody to announce to)."""
        others = self._others
        return others is not None and not others

    def _on_reset(self, entries: dict[str, dict[str, Any]]) -> None:
        self._others = {k for k in entries if k.startswith(self._members_prefix)} - {self._key}
        leader = entries.get(self._leader_key)
        if leader is None or int(leader.get("lease", 0)) != self._lease_id:
            self._lost_leadership()
        if self._watched_once:
            self._wake()  # wakes may have been missed while the watch was down
            self._call_finished(None)
        self._watched_once = True

    def _on_event(self, key: str, kv: dict[str, Any] | None) -> None:
        if key.startswith(self._members_prefix) and key != self._key:
            others = set(self._others or ())
            if kv is None:
                others.discard(key)
            else:
                others.add(key)
            self._others = others
        elif key == self._leader_key:
            if kv is None or int(kv.get("lease", 0)) != self._lease_id:
                self._lost_leadership()
        elif key == self._wake_key and kv is not None:
            sender = kv["value"].decode(errors="replace").rsplit("\n", 1)[0]
            if sender != self._name:
                self._wake()
        elif key == self._announcer.finished_key and kv is not None:
            sender, _, listed = kv["value"].decode(errors="replace").partition("\n")
            if sender != self._name:
                self._call_finished(None if listed == "*" else listed.split(","))

    def _lost_leadership(self) -> None:
        """The leader key is gone or someone else's: stop leading now and campaign again."""
        self._leader = False
        self._kick.set()

    def _call_finished(self, task_ids: list[str] | None) -> None:
        callback = self._finished_callback
        if callback is None:
            return
        try:
            callback(task_ids)
        except Exception:  # a broken callback must not stop the watch
            log.exception("finished callback of %s failed", self._name)

    def _wake(self) -> None:
        callback = self._callback
        if callback is None:
            return
        try:
            callback()
        except Exception:  # a broken callback must not stop the watch
            log.exception("wake callback of %s failed", self._name)
