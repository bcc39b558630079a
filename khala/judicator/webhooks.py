"""Webhooks: when a task with a `callback_url` finishes, the leader judicator POSTs the task's
API v2 JSON there — a timeout per try, `webhook_tries` tries with doubling backoff, and, with a
secret, `X-Khala-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` beside
`X-Khala-Timestamp`. Outcomes are kept in the store (khala/store/ops.py) and shown on the task.

URLs are refused (at submission and again before each try, as DNS may have changed) when any
address they resolve to is not globally routable (khala/rules/addresses.py: loopback,
private-use, shared, link-local, reserved, IPv6 forms carrying such an IPv4 address, …) or is
one of this host's own addresses, unless `webhook_allow_internal` is set.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from khala import model
from khala.rules import addresses

log = logging.getLogger(__name__)

MAX_URL = 2048
PASS_SECONDS = 0.2  # how often the leader looks for due webhooks
SWEEP_SECONDS = 10.0  # how often pending webhooks of tasks finished elsewhere are re-checked
SWEEP_PAGE = 500  # pending webhooks checked per sweep (the next sweep takes the next page)
USER_AGENT = "khala-webhook/1"


def _own_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(ipaddress.ip_address(info[4][0]))
    except OSError:
        pass
    return found


def check_callback_url(url: str, allow_internal: bool) -> None:
    """Raise ValueError unless `url` is an http(s) URL Khala may call."""
    if len(url) > MAX_URL:
        raise ValueError(f"longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    if allow_internal:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"host {parts.hostname!r} does not resolve") from exc
    own = _own_addresses()
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        why = addresses.refusal(address) or ("this host's own" if address in own else None)
        if why is not None:
            raise ValueError(f"{parts.hostname} is an internal address ({address}: {why}); "
                             "webhooks may call only globally routable addresses")


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


class WebhookSender:
    """The leader's delivery loop. `render(task_id)` gives the JSON body of a task (None if the
    task is gone); `is_leader` gates every pass."""

    def __init__(self, ops: Any, render: Callable[[str], bytes | None],
                 is_done: Callable[[str], bool], is_leader: Callable[[], bool],
                 settings: Any, flush: Callable[[], int] = lambda: 0) -> None:
        self.ops = ops
        self.flush = flush  # marks the webhooks of tasks finished here due; how many were
        self.render = render
        self.is_done = is_done
        self.is_leader = is_leader
        self.s = settings
        self.secret = b""
        if settings.webhook_secret_file:
            with open(settings.webhook_secret_file, "rb") as fh:
                self.secret = fh.read().strip()
        self._swept_to = ""  # the last task id of the sweep's previous page ("": from the start)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="khala-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(self.s.webhook_timeout + 5)

    def poke(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        """On every judicator: mark the webhooks of tasks finished here due (a poke). On the
        leader: deliver what is due, at once when a poke readied some, else every
        PASS_SECONDS (retries, and tasks finished on other judicators)."""
        swept = passed = 0.0
        while not self._stop.is_set():
            self._wake.wait(PASS_SECONDS)
            self._wake.clear()
            try:
                readied = self.flush()
                if not self.is_leader():
                    continue
                if not readied and time.monotonic() - passed < PASS_SECONDS:
                    continue  # a poke for tasks without webhooks: nothing new is due
                passed = time.monotonic()
                if time.monotonic() - swept > SWEEP_SECONDS:
                    swept = time.monotonic()
                    self._sweep()
                for _ in range(100):  # bounded pass
                    if self._stop.is_set() or not self._deliver_one():
                        break
                    self.flush()  # tasks finished meanwhile: not held back by a long pass
            except Exception:
                log.warning("webhook pass failed", exc_info=True)
        try:
            self.flush()  # stopping: what finished here is marked due before we go
        except Exception:
            log.warning("webhooks of finished tasks not marked due at stop", exc_info=True)

    def _sweep(self) -> None:
        """One page of pending webhooks: those whose task is done are marked due. Pages go
        round by task id, so many pending webhooks of undone tasks never hide a done one."""
        pending = self.ops.pending_webhooks(SWEEP_PAGE, self._swept_to)
        self._swept_to = pending[-1] if len(pending) == SWEEP_PAGE else ""
        done = [i for i in pending if self.is_done(i)]
        self.ops.webhooks_ready(done, model.now())

    def _deliver_one(self) -> bool:
        lease = _later(self.s.webhook_timeout + 10)
        record = self.ops.claim_webhook(model.now(), lease)
        if record is None:
            return False
        attempts = int(record["attempts"] or 0) + 1
        body = self.render(record["task_id"])
        status, error = (None, "the task is gone") if body is None else self._post(
            record["url"], body)
        changes: dict[str, Any] = {"attempts": attempts, "last_status": status,
                                   "last_error": error}
        if body is not None and status is not None and 200 <= status < 300:
            changes.update(state="delivered", delivered_at=model.now())
        elif body is None or attempts >= self.s.webhook_tries:
            changes["state"] = "failed"
            log.warning("webhook of %s failed after %d tries: %s", record["task_id"],
                        attempts, error or status)
        else:
            delay = self.s.webhook_backoff * 2 ** (attempts - 1)
            changes.update(state="ready", next_at=_later(delay))
        self.ops.webhook_attempted(record["task_id"], changes)
        return True

    def _post(self, url: str, body: bytes) -> tuple[int | None, str]:
        try:
            check_callback_url(url, self.s.webhook_allow_internal)
        except ValueError as exc:
            return None, f"refused: {exc}"
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.secret:
            timestamp = str(int(time.time()))
            headers["X-Khala-Timestamp"] = timestamp
            headers["X-Khala-Signature"] = signature(self.secret, timestamp, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=self.s.webhook_timeout) as reply:
                return int(reply.status), ""
        except urllib.error.HTTPError as exc:
            return int(exc.code), f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return None, str(exc)[:300]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could point anywhere (the cluster itself): not followed, it counts as a
    failed try."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _later(seconds: float) -> str:
    moment = _dt.datetime.now(_dt.UTC).replace(tzinfo=None) + _dt.timedelta(seconds=seconds)
    return model.format_time(moment)


def task_body(task_json: dict[str, Any]) -> bytes:
    return json.dumps({"data": task_json}, separators=(",", ":")).encode()

