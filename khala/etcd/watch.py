"""Watching every key under a prefix: list them, then follow their changes with a watch stream
from the next revision; any failure lists again (from the next endpoint, after a back-off)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import requests

from khala.etcd.client import (
    ERRORS,
    REQUEST_TIMEOUT,
    Backoff,
    Worker,
    decode,
    describe,
    encode,
    range_end,
)

log = logging.getLogger(__name__)

WATCH_IDLE = 10.0  # a watch stream silent this long is re-opened (and the list re-read)

#: A key's record as the gateway lists it, its value decoded to bytes ("value", "lease", …).
KeyValue = dict[str, Any]


class PrefixWatch(Worker):
    """`on_reset(every key → its record)` after each listing, then `on_event(key, record or None
    for a deletion)` for each change, on a thread of its own."""

    def __init__(
        self,
        endpoints: list[str],
        prefix: str,
        on_reset: Callable[[dict[str, KeyValue]], None],
        on_event: Callable[[str, KeyValue | None], None],
    ) -> None:
        self._prefix = prefix
        self._on_reset = on_reset
        self._on_event = on_event
        self._response: requests.Response | None = None
        super().__init__(endpoints, REQUEST_TIMEOUT, f"etcd-watch {prefix}")

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            _shutdown(response)
        self._halt()
        self._pool.close()

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                revision = self._list()
                backoff.reset()
                self._follow(revision + 1)
            except ERRORS as exc:
                if not self._stop.is_set():
                    log.debug("etcd watch of %s broke: %s", self._prefix, describe(exc))
                    self._pool.rotate()
            backoff.wait(self._stop)

    def _range(self) -> dict[str, str]:
        return {"key": encode(self._prefix), "range_end": encode(range_end(self._prefix))}

    def _list(self) -> int:
        client = self._pool.client
        reply = client.post(client.get_url("/kv/range"), json=self._range())
        entries = {decode(kv["key"]).decode(): _record(kv) for kv in reply.get("kvs", [])}
        self._on_reset(entries)
        return int(reply["header"]["revision"])

    def _follow(self, start_revision: int) -> None:
        client = self._pool.client
        request: dict[str, Any] = {"create_request": {**self._range(),
                                                      "start_revision": start_revision}}
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
            key = decode(kv["key"]).decode()
            self._on_event(key, None if event.get("type") == "DELETE" else _record(kv))
        return True


def _record(kv: dict[str, Any]) -> KeyValue:
    return {**kv, "value": decode(kv.get("value", ""))}


def _shutdown(response: requests.Response) -> None:
    """Unblock a thread reading a stream (as etcd3gw's Watcher.stop does)."""
    try:
        sock = socket.fromfd(response.raw.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    except (OSError, ValueError, AttributeError):
        pass  # already closed: nothing to unblock
