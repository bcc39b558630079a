"""Run one sandboxed step with the network allowed, in whatever network namespace this process
is in (tests/sandbox/test_network.py starts it inside a namespace of its own). Reads a JSON
request on stdin: {"deny": "CIDR,…", "network": bool, "script": python source}; prints the
step's outcome as JSON."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading

from khala.executor.stepopts import run_step
from khala.model import StepOptions
from khala.sandbox.base import Limits, RunSpec
from khala.sandbox.bwrap import BwrapSandbox
from khala.sandbox.network import NetworkPolicy


def main() -> None:
    request = json.load(sys.stdin)
    box = BwrapSandbox(network=NetworkPolicy.parse(True, request["deny"]))
    try:
        with tempfile.TemporaryDirectory(prefix="khala-test-net-") as root:
            os.chmod(root, 0o711)
            workdir = os.path.join(root, "task")
            os.mkdir(workdir)
            with open(os.path.join(workdir, "probe.py"), "w") as fh:
                fh.write(request["script"])
            box.prepare_workdir(workdir)
            spec = RunSpec(argv=["python3", "probe.py"], workdir=workdir,
                           limits=Limits(wall_time=60, memory=256 << 20, pids=64))
            outcome = run_step(box, spec, StepOptions(network=request["network"]),
                               threading.Event())
    finally:
        box.close()
    json.dump({"stdout": outcome.stdout.decode(errors="replace"),
               "stderr": outcome.stderr.decode(errors="replace"),
               "reason": outcome.report.reason.value, "detail": outcome.detail}, sys.stdout)


if __name__ == "__main__":
    main()
