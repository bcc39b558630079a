"""The executor's metered sandbox (khala/metrics/executor.py) answers as the backend it wraps:
every method of Sandbox reaches the backend, so a backend's own refusal (the unsandboxed
executor has no network or CPU rate to give) holds behind the metrics too."""

from __future__ import annotations

import inspect
import os
import tempfile
import threading

import pytest

from khala.executor.stepopts import run_step
from khala.metrics.executor import ExecutorMetrics, _MeteredSandbox
from khala.model import Reason, StepOptions
from khala.sandbox.base import RunSpec, Sandbox
from khala.sandbox.plain import PlainSandbox


def test_every_sandbox_method_is_passed_on() -> None:
    methods = {name for name, value in vars(Sandbox).items()
               if inspect.isfunction(value) and not name.startswith("_")}
    assert methods, "Sandbox has methods"
    assert methods <= set(vars(_MeteredSandbox)), methods - set(vars(_MeteredSandbox))


@pytest.mark.integration  # runs a step (unsandboxed)
def test_the_unsandboxed_backends_refusals_hold_behind_the_metrics() -> None:
    metered = ExecutorMetrics().sandbox(PlainSandbox())
    with tempfile.TemporaryDirectory(prefix="khala-test-") as workdir:
        for options, why in ((StepOptions(network=True), b"no network stack"),
                             (StepOptions(cpu_rate=0.5), b"cannot set a CPU rate")):
            spec = RunSpec(argv=["bash", "-c", "touch ran"], workdir=workdir)
            outcome = run_step(metered, spec, options, threading.Event())
            assert outcome.report.reason == Reason.INTERNAL_ERROR, outcome
            assert why in outcome.stderr
            assert not os.path.exists(os.path.join(workdir, "ran"))
        spec = RunSpec(argv=["bash", "-c", "pwd > here"], workdir=workdir)
        outcome = run_step(metered, spec, StepOptions(workdir="a/b"), threading.Event())
        assert outcome.report.reason == Reason.OK, outcome
        with open(os.path.join(workdir, "a", "b", "here")) as fh:
            assert fh.read() == os.path.join(workdir, "a", "b") + "\n"
