"""The real bwrap sandbox shared by the sandbox tests (a failure on CI when unavailable), cold
and warm."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from khala.sandbox.bwrap import BwrapSandbox
from tests.fixtures.sandboxes import bwrap_sandbox
from tests.sandbox.pace import HOST_PACE_ENV, pace


def pytest_report_header() -> str | None:
    """In the cgroup v2 guest: how much slower it is than the host (bounds scale by it)."""
    if os.environ.get(HOST_PACE_ENV):
        return f"sandbox pace: {pace():.1f} × the host's"
    return None


@pytest.fixture(scope="module", params=["cold", "warm"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[BwrapSandbox]:
    """The bwrap sandbox, cold (one bubblewrap per step) and warm (a pool of two reused boxes,
    `khala.sandbox.warm`): every sandbox test runs on both."""
    yield from bwrap_sandbox(request.param)
