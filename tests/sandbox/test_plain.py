"""The unsandboxed backend (`--sandbox=none`) still enforces what it can: wall time, output
caps, cancel, and kills the process group."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from khala.sandbox.base import Limits, RunSpec
from khala.sandbox.plain import PlainSandbox

pytestmark = pytest.mark.integration  # starts real processes


def run(tmp_path: Path, script: str, cancel: threading.Event | None = None, **limits: object):
    spec = RunSpec(argv=["bash", "-c", script], workdir=str(tmp_path), limits=Limits(**limits))  # type: ignore[arg-type]
    return PlainSandbox().run(spec, cancel or threading.Event())


def test_ok_and_nonzero(tmp_path: Path) -> None:
    ok = run(tmp_path, "echo out; echo err >&2")
    assert (ok.stdout, ok.stderr, ok.report.reason, ok.report.exit_code) == (
        b"out\n",
        b"err\n",
        "ok",
        0,
    )
    bad = run(tmp_path, "exit 3")
    assert (bad.report.reason, bad.report.exit_code) == ("nonzero_exit", 3)


def test_output_cap_even_when_the_writer_exits_first(tmp_path: Path) -> None:
    out = run(tmp_path, "head -c 100000 /dev/zero", output=4096)
    assert out.report.reason == "output_limit"
    assert len(out.stdout) == 4096


def test_wall_limit_kills_the_group(tmp_path: Path) -> None:
    started = time.monotonic()
    out = run(tmp_path, "sleep 30 & sleep 30; wait", wall_time=0.5)
    assert out.report.reason == "wall_limit" and time.monotonic() - started < 5


def test_cancel(tmp_path: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    out = run(tmp_path, "sleep 30", cancel=cancel)
    assert out.report.reason == "cancelled"
