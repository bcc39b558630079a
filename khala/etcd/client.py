"""etcd clients: one per endpoint in a pool that fails over, the errors a call may raise, the
back-off between failed calls, and the key encoding of etcd's JSON gateway."""

from __future__ import annotations

import base64
import threading
from urllib.parse import urlsplit

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

from khala.errors import ConfigError

API_PATH = "/v3/"  # etcd ≥ 3.4; set so that no /version round trip precedes the first call
REQUEST_TIMEOUT = 3.0  # seconds for one unary etcd call (list, put, txn, revoke)
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0
#: What an etcd call may raise: the server's refusals, transport failures, malformed answers.
ERRORS = (Etcd3Exception, requests.RequestException, OSError, ValueError, KeyError, TypeError)


def encode(text: str | bytes) -> str:
    """A key or value as the JSON gateway carries it (base64)."""
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def decode(value: str) -> bytes:
    return base64.b64decode(value or "")


def range_end(prefix: str) -> bytes:
    """The end of the range of every key starting with `prefix` (its last byte plus one)."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\0"  # every key
    raw[-1] += 1
    return bytes(raw)


def describe(exc: BaseException) -> str:
    """etcd3gw exceptions keep their text in `detail_text`; str() of them is often empty."""
    detail = getattr(exc, "detail_text", None) or str(exc)
    return f"{type(exc).__name__}: {detail}".strip()


def make_client(endpoint: str, timeout: float) -> Etcd3Client:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parts.scheme not in {"http", "https"} or not parts.hostname or not parts.port:
        raise ConfigError(f"etcd endpoint {endpoint!r} is not http://HOST:PORT")
    return Etcd3Client(
        host=parts.hostname, port=parts.port, protocol=parts.scheme, timeout=timeout,
        api_path=API_PATH,
    )


class Pool:
    """One client per endpoint, for one thread; `rotate()` fails over to the next endpoint."""

    def __init__(self, endpoints: list[str], timeout: float = REQUEST_TIMEOUT) -> None:
        if not endpoints:
            raise ConfigError("no etcd endpoints given")
        self._clients = [make_client(e, timeout) for e in endpoints]
        self._index = 0

    @property
    def client(self) -> Etcd3Client:
        return self._clients[self._index]

    @property
    def size(self) -> int:
        return len(self._clients)

    def rotate(self) -> None:
        self._index = (self._index + 1) % len(self._clients)

    def close(self) -> None:
        for client in self._clients:
            client.session.close()


class Backoff:
    """The wait after a failed call: BACKOFF_FIRST doubling to BACKOFF_MAX, until `reset`."""

    def __init__(self) -> None:
        self._delay = BACKOFF_FIRST

    def reset(self) -> None:
        self._delay = BACKOFF_FIRST

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self._delay)
        self._delay = min(self._delay * 2, BACKOFF_MAX)


def create(client: Etcd3Client, key: str, value: str, lease_id: int) -> int | None:
    """Put `key` → `value` on the lease only if the key is absent, in one transaction: None if
    it was put, else the lease the key is on (0: none)."""
    encoded = encode(key)
    reply = client.transaction({
        "compare": [{"key": encoded, "result": "EQUAL", "target": "CREATE",
                     "create_revision": 0}],
        "success": [{"request_put": {"key": encoded, "value": encode(value),
                                     "lease": lease_id}}],
        "failure": [{"request_range": {"key": encoded}}],
    })
    if reply.get("succeeded"):
        return None
    kvs = reply["responses"][0]["response_range"].get("kvs", [])
    return int(kvs[0].get("lease", 0)) if kvs else 0


class Worker:
    """A daemon thread with its own client pool: `_run` loops until `_stop` is set, waiting on
    `_kick` between rounds."""

    def __init__(self, endpoints: list[str], timeout: float, name: str) -> None:
        self._pool = Pool(endpoints, timeout)
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    def _halt(self) -> None:
        """Stop the thread (waiting a bounded while)."""
        self._stop.set()
        self._kick.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(REQUEST_TIMEOUT + 1)

    def _run(self) -> None:
        raise NotImplementedError
