"""The real bwrap sandbox shared by the sandbox tests (a failure on CI when unavailable)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from khala.errors import SandboxUnavailable
from khala.sandbox.bwrap import BwrapSandbox, check_bwrap
from tests.fixtures.servers import missing


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BwrapSandbox]:
    try:
        box = check_bwrap()
    except SandboxUnavailable as exc:  # pragma: no cover - depends on the host
        missing(f"bwrap sandbox unavailable: {exc}")
    yield box
    box.close()
