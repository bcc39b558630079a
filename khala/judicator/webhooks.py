"""Webhooks: when a task with a `callback_url` finishes, the leader judicator POSTs the task's
API v2 JSON there — `webhook_tries` tries with doubling backoff, and, with a secret,
`X-Khala-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` beside
`X-Khala-Timestamp`. The delivery's states and what each outcome makes of it are
khala/rules/webhooks.py's; they are kept in the store (khala/store/ops.py) and shown on the task.

The leader sends `webhook_workers` at once, at most `webhook_per_host` to one host (a webhook
claimed for a host that has its share goes back untried, due again when that host is likely to
take it: khala/rules/webhooks.py's HostShares), and
each try has one deadline in all, `webhook_timeout`: resolving, connecting, sending and reading
the answer's head (bounded, khala/net/httppost.py). So a receiver that answers one byte a
second holds at most its host's share of the senders, each for one deadline per try, and other
hosts' webhooks go on.

URLs are refused (at submission and again before each try, as DNS may have changed) when any
address they resolve to is not globally routable (khala/rules/addresses.py: loopback,
private-use, shared, link-local, reserved, IPv6 forms carrying such an IPv4 address, …) or is
one of this host's own addresses, unless `webhook_allow_internal` is set. A try connects only
to the addresses it checked.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import SplitResult, urlsplit

from khala import model
from khala.net.deadline import Deadline
from khala.net.httppost import Address, Request, post
from khala.rules import addresses, webhooks
from khala.rules.webhooks import HostShares

log = logging.getLogger(__name__)

MAX_URL = 2048
PASS_SECONDS = 0.2  # how often the leader looks for due webhooks
SWEEP_SECONDS = 10.0  # how often pending webhooks of tasks finished elsewhere are re-checked
SWEEP_PAGE = 500  # pending webhooks checked per sweep (the next sweep takes the next page)
USER_AGENT = "khala-webhook/1"
Resolve = Callable[[str, int], list[tuple[Any, ...]]]


def _getaddrinfo(host: str, port: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _own_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(ipaddress.ip_address(info[4][0]))
    except OSError:
        pass
    return found


def _parsed(url: str) -> SplitResult:
    if len(url) > MAX_URL:
        raise ValueError(f"longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    return parts


def check_callback_url(url: str, allow_internal: bool) -> None:
    """Raise ValueError unless `url` is an http(s) URL Khala may call (at submission: with
    `allow_internal` its host need not resolve yet)."""
    _parsed(url)
    if not allow_internal:
        callback_addresses(url, allow_internal)


def callback_addresses(url: str, allow_internal: bool,
                       resolve: Resolve = _getaddrinfo) -> list[Address]:
    """The addresses of `url`'s host to call (family, sockaddr); ValueError unless it is an
    http(s) URL Khala may call. TimeoutError if `resolve` gives up on time."""
    parts = _parsed(url)
    host = str(parts.hostname)
    try:
        infos = resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    except TimeoutError:
        raise
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"host {host!r} does not resolve") from exc
    own = set() if allow_internal else _own_addresses()
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        why = None if allow_internal else (
            addresses.refusal(address) or ("this host's own" if address in own else None))
        if why is not None:
            raise ValueError(f"{host} is an internal address ({address}: {why}); "
                             "webhooks may call only globally routable addresses")
    return [(info[0], info[4]) for info in infos]


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


class WebhookSender:
    """The leader's delivery loop and its senders. `render(task_id)` gives the JSON body of a
    task (None if the task is gone); `is_leader` gates every pass."""

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
        self._shares = HostShares(settings.webhook_workers, settings.webhook_per_host)
        # Tries run here, never more than the shares allow (so none waits in the pool's queue);
        # DNS lookups on a pool of their own, so a try waits for one no longer than its deadline.
        self._senders = ThreadPoolExecutor(settings.webhook_workers, "khala-webhook")
        self._resolver = ThreadPoolExecutor(settings.webhook_workers, "khala-webhook-dns")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._freed = threading.Event()  # a sender finished: a pass may hand it the next one
        self._thread = threading.Thread(target=self._loop, name="khala-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Claim nothing more; tries under way end by their deadline."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.s.webhook_timeout + 5)
        self._senders.shutdown(wait=True, cancel_futures=True)
        self._resolver.shutdown(wait=False, cancel_futures=True)

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
            freed = self._freed.is_set()
            self._freed.clear()
            try:
                readied = self.flush()
                if not self.is_leader():
                    continue
                if not readied and not freed and time.monotonic() - passed < PASS_SECONDS:
                    continue  # a poke for tasks without webhooks: nothing new is due
                passed = time.monotonic()
                if time.monotonic() - swept > SWEEP_SECONDS:
                    swept = time.monotonic()
                    self._sweep()
                for _ in range(100):  # bounded pass
                    if self._stop.is_set() or not self._shares.free() or not self._claim_one():
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

    def _claim_one(self) -> bool:
        """Claim a due webhook and hand it to a sender, or back if its host has its share
        (due again at its host's next booked turn, no try counted); False when none is due."""
        lease = _later(self.s.webhook_timeout + 10)  # a try ends by its deadline, well before
        record = self.ops.claim_webhook(model.now(), lease)
        if record is None:
            return False
        host, started = _host_of(record["url"]), time.monotonic()
        if not self._shares.take(host, started):
            self.ops.webhook_attempted(record["task_id"], webhooks.deferred(
                record["lease_until"], _utcnow(), self._shares.comeback(host, started)))
            return True
        try:
            self._senders.submit(self._attempt, record, host, started)
        except RuntimeError:  # stopping: the lease runs out and the webhook is due again
            self._shares.give(host, started, time.monotonic())
        return True

    def _attempt(self, record: dict[str, Any], host: str, started: float) -> None:
        try:
            attempts = int(record["attempts"] or 0) + 1
            body = self.render(record["task_id"])
            status, error = (None, "the task is gone") if body is None else self._post(
                record["url"], body)
            change = webhooks.attempted(record["lease_until"], attempts, status, error,
                                        gone=body is None, tries=self.s.webhook_tries,
                                        backoff=self.s.webhook_backoff, now=_utcnow())
            if change.sets["state"] == webhooks.FAILED:
                log.warning("webhook of %s failed after %d tries: %s", record["task_id"],
                            attempts, error or status)
            if not self.ops.webhook_attempted(record["task_id"], change):
                log.warning("webhook of %s: the outcome of try %d came after its lease; "
                            "another judicator has it now", record["task_id"], attempts)
        except Exception:
            log.warning("webhook of %s: the try failed", record["task_id"], exc_info=True)
        finally:
            self._shares.give(host, started, time.monotonic())
            self._freed.set()  # a sender is free: the next pass need not wait
            self._wake.set()

    def _post(self, url: str, body: bytes) -> tuple[int | None, str]:
        """One try, all of it within webhook_timeout: (HTTP status or None, error)."""
        deadline = Deadline(self.s.webhook_timeout)
        late = f"not answered within {self.s.webhook_timeout:g} s"

        def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
            return self._resolver.submit(_getaddrinfo, host, port).result(deadline.left())

        try:
            found = callback_addresses(url, self.s.webhook_allow_internal, resolve)
        except ValueError as exc:
            return None, f"refused: {exc}"
        except TimeoutError:
            return None, late
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.secret:
            timestamp = str(int(time.time()))
            headers["X-Khala-Timestamp"] = timestamp
            headers["X-Khala-Signature"] = signature(self.secret, timestamp, body)
        try:
            status = post(Request(urlsplit(url), body, headers), found, deadline)
        except TimeoutError:
            return None, late
        except OSError as exc:
            return None, str(exc)[:300]
        return status, "" if 200 <= status < 300 else f"HTTP {status}"


def _host_of(url: str) -> str:
    """The host a webhook's share is counted against: its URL's host name."""
    return (urlsplit(url).hostname or "").lower()


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def _later(seconds: float) -> str:
    return model.format_time(_utcnow() + _dt.timedelta(seconds=seconds))


def task_body(task_json: dict[str, Any]) -> bytes:
    return json.dumps({"data": task_json}, separators=(",", ":")).encode()

