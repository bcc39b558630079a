"""Shared fixtures live in tests/fixtures/*; each module is owned by one concern.

The `integration` marker (tests/README.md) is applied here to every test that uses a shared
real-server fixture; modules whose own fixtures start processes say `pytestmark =
pytest.mark.integration`. A test without the marker may not start a process: the hooks below
fail it, so `pytest -m "not integration"` (`make unit`) stays fast and needs no servers.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.cluster",
]

# Shared fixtures that start real processes (servers, a cluster, the bwrap sandbox, Chromium).
REAL_FIXTURES = frozenset(
    {"etcd_server", "ferretdb_server", "mongo_url", "cluster", "cluster_factory", "sandbox",
     "browser"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    # Tests that run for minutes go first: parallel workers take files in collection order, and
    # one started late would finish long after the rest.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@contextlib.contextmanager
def _no_process(item: pytest.Item) -> Iterator[None]:
    """Fail a test not marked `integration` that starts a process from the test's thread, in
    its own code or in a fixture set up for it, of any scope (threads of servers that session
    fixtures of integration tests started may go on doing their work)."""
    if item.get_closest_marker("integration"):
        yield
        return
    test_thread = threading.current_thread()
    start = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def refuse(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        if threading.current_thread() is test_thread:
            raise AssertionError(
                f"{item.nodeid} starts a process ({args[0]!r}) but is not marked integration: "
                "use a shared real-server fixture or add `pytestmark = pytest.mark.integration` "
                "(tests/README.md)"
            )
        start(self, *args, **kwargs)

    subprocess.Popen._execute_child = refuse  # type: ignore[attr-defined]
    try:
        yield
    finally:
        subprocess.Popen._execute_child = start  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _no_process(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _no_process(item):
        return (yield)
