"""Browser fixtures: Debian's Chromium driven by Playwright, never a browser of Playwright's own.

`browser` is one headless Chromium for the session; `open_page` gives pages that record every
console error, page error and dialog, so a test can assert that none happened. Screenshots go to
$KHALA_SCREENSHOT_DIR when set (docs/img is refreshed that way), else to a pytest tmp dir.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.fixtures.servers import missing

CHROMIUM = "/usr/bin/chromium"
# No request may leave the machine: these flags keep Chromium from calling home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
TIMEOUT_MS = 30_000  # bound on every Playwright wait (a page load, a selector, a navigation)


@dataclass
class Watched:
    """A page and what went wrong on it."""

    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    pwned: list[str] = field(default_factory=list)

    def goto(self, url: str) -> None:
        self.page.goto(url)
        self.wait_ready()

    def wait_ready(self) -> None:
        """Until the page's script has rendered the API's answer at least once."""
        self.page.wait_for_selector("main[data-state='ready']")

    def problems(self) -> list[str]:
        return self.errors + [f"dialog: {d}" for d in self.dialogs] + [
            f"hostile script ran: {p}" for p in self.pwned
        ]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"no {CHROMIUM} (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Watched]]:
    """`open_page(width=1280)`: a fresh context (no cookies, no cache) with one watched page."""
    contexts: list[Any] = []

    def make(width: int = 1280, height: int = 800) -> Watched:
        context = browser.new_context(
            viewport={"width": width, "height": height}, accept_downloads=True
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        pwned: list[str] = []
        # Hostile payloads call khalaPwned(...): it must never be called.
        context.expose_binding("khalaPwned", lambda _source, what="": pwned.append(str(what)))
        watched = Watched(context.new_page(), pwned=pwned)
        page = watched.page
        page.on(
            "console",
            lambda msg: watched.errors.append(f"console: {msg.text}")
            if msg.type == "error"
            else None,
        )
        page.on("pageerror", lambda exc: watched.errors.append(f"pageerror: {exc}"))

        def on_dialog(dialog: Any) -> None:
            watched.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return watched

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("KHALA_SCREENSHOT_DIR")
    if wanted:
        path = Path(wanted)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, etcd_server: Any) -> Iterator[Cluster]:
    """The cluster of `make run`, in small: etcd discovery (so the gateway finds the executor's
    live-output endpoint), a judicator on SQLite, one executor with every language this host
    has, a gateway. Yielded once the executor's languages are listed (C at least)."""
    prefix = f"/khala-site-{uuid.uuid4().hex[:12]}"
    built = Cluster(tmp_path_factory.mktemp("site"), etcd_url=etcd_server.url, prefix=prefix)
    try:
        built.start_judicator()
        built.start_executor(slots=2)
        built.start_gateway()
        deadline = time.monotonic() + 60
        names: list[str] = []
        while "c" not in names:
            assert time.monotonic() < deadline, f"no C language listed\n{built.logs()}"
            reply = requests.get(f"{built.gateway_url}/api/v2/languages", timeout=10)
            names = [x["name"] for x in reply.json().get("data", [])]
            time.sleep(0.1)
        yield built
    finally:
        built.stop()
