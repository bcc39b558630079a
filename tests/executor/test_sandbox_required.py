"""`khala executor` refuses to run unsandboxed unless told to, and then warns at every start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.integration  # starts real processes


def executor(*flags: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PATH": "/nonexistent"}  # no bwrap to be found
    return subprocess.Popen(
        [sys.executable, "-m", "khala", "executor", "--judicators", "127.0.0.1:9", *flags],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_refuses_without_bubblewrap() -> None:
    proc = executor("--sandbox", "bwrap")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert "bubblewrap" in out and "--sandbox=none" in out


def test_runs_unsandboxed_only_when_told_and_warns() -> None:
    proc = executor("--sandbox", "none", "--heartbeat", "0.2")
    assert proc.stdout is not None
    lines: list[str] = []
    # SIGTERM only once it has said it started (its stop handlers are installed just before):
    # a fixed sleep raced the interpreter's start-up on a loaded host (killed silently).
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("slot(s), sandbox" in x for x in lines):
        assert proc.poll() is None, f"an explicit --sandbox=none executor must start: {lines}"
        time.sleep(0.05)
    assert any("slot(s), sandbox" in x for x in lines), lines
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    reader.join(10)
    out = "".join(lines)
    assert "RUNNING WITHOUT A SANDBOX" in out
    assert proc.returncode == 0, out
