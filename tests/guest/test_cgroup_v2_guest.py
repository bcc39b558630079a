"""The sandbox's cgroup-dependent tests on a real cgroup v2 kernel.

This host is cgroup v1. `scripts/guest-run` boots a QEMU guest on the Debian kernel in /boot
(TCG emulation when there is no hardware virtualisation), with the unified hierarchy mounted and
memory, pids and cpu enabled, and this repository shared: the tests marked `cgroup` in
tests/sandbox run there (cold and warm sandboxes: limits enforced and measured, cleanup,
delegation). Their speed-dependent bounds are the host's times the guest's measured slowdown
(tests/sandbox/pace.py), so they are neither loosened here nor broken there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.fixtures.servers import REPO, missing
from tests.sandbox.pace import HOST_PACE_ENV, reference_seconds

pytestmark = pytest.mark.integration  # boots a guest
GUEST_SECONDS = 1200  # the whole guest run: boot, the suite; far beyond its usual few minutes
PYTHON = REPO / ".venv" / "bin" / "python"


def cgroup_tests() -> list[str]:
    """The node ids of the tests marked `cgroup` in tests/sandbox, as collected here."""
    done = subprocess.run(
        [str(PYTHON), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", "cgroup", "tests/sandbox"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    # Not the hostile cases in the judge image (tests/sandbox/test_hostile.py): it is unpacked
    # from gigabytes, more than the guest's memory holds; its limits are the host root's.
    ids = [line for line in done.stdout.splitlines() if "::" in line and "judge-image" not in line]
    assert ids, done.stdout + done.stderr
    return ids


def run_guest(argv: list[str], log: Path) -> int:
    """Run `argv` (scripts/guest-run …), its output into `log`; the whole group is killed if it
    outlives GUEST_SECONDS."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            return proc.wait(GUEST_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the guest run took over {GUEST_SECONDS}s:\n"
                                 + log.read_text(errors="replace")[-4000:]) from None
        finally:
            if proc.poll() is None:  # timed out, or the test was interrupted: no guest stays
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


@pytest.mark.timeout(GUEST_SECONDS + 120)
def test_cgroup_tests_pass_on_a_cgroup_v2_kernel(tmp_path: Path) -> None:
    if not shutil.which("qemu-system-x86_64") or not list(Path("/boot").glob("vmlinuz-*")):
        missing("QEMU or a kernel in /boot is not installed")
    if not (REPO / ".venv" / "bin" / "vng").exists():
        missing("virtme-ng (vng) is not installed")
    ids = cgroup_tests()
    junit = tmp_path / "junit.xml"
    command = [
        "env", f"{HOST_PACE_ENV}={reference_seconds():.4f}", "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1",
        "CI=true", str(PYTHON), "-m", "pytest", "-ra", "-p", "no:cacheprovider",
        "-p", "pytest_timeout", "--durations=10", f"--junitxml={junit}", *ids,
    ]
    started = time.monotonic()
    code = run_guest([str(REPO / "scripts" / "guest-run"), "--memory", "2G", "--cpus", "2",
                      "--rwdir", str(tmp_path), "--", *command], tmp_path / "guest.log")
    took = time.monotonic() - started
    output = (tmp_path / "guest.log").read_text(errors="replace")
    assert junit.exists(), f"the guest suite did not run (exit {code}):\n{output[-6000:]}"
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    pace = next((line for line in output.splitlines() if "sandbox pace" in line), "")
    print(f"cgroup v2 guest: {counts} in {took:.0f}s; {pace}")
    assert code == 0 and counts == {"tests": len(ids), "failures": 0, "errors": 0,
                                    "skipped": 0}, output[-8000:]
