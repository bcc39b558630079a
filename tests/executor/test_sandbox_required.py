"""`khala executor` refuses to run unsandboxed unless told to, and then warns at every start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
    time.sleep(2)
    assert proc.poll() is None, "an explicit --sandbox=none executor must start"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "RUNNING WITHOUT A SANDBOX" in out
    assert proc.returncode == 0, out
