"""Benchmark-only tracing of the executor's and judicator's hot path (`benchmarks.profile
--trace`): loaded by every Python process started with this directory on PYTHONPATH, it acts
only in `khala executor` / `khala judicator` processes when KHALA_TRACE_DIR is set. It wraps
the functions named below and appends (start, end, name, thread) lines, wall-clock seconds, to
`<KHALA_TRACE_DIR>/<role>-<pid>.trace`. Not product code: nothing in khala/ imports it."""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
import time
from typing import Any

TARGETS = {
    "executor": [
        ("khala.rpc.client", "JudicatorClient", "report"),
        ("khala.rpc.client", "JudicatorClient", "wake"),
        ("khala.rpc.client", "JudicatorClient", "hand_in"),
        ("khala.executor.reporter", "Reporter", "_apply"),
        ("khala.executor.slots", "Slots", "start"),
        ("khala.executor.slots", "Slots", "_finish"),
        ("khala.executor.runner", None, "run_task"),
        ("khala.executor.runner", None, "make_workdir"),
        ("khala.executor.workareas", "WorkAreas", "take"),
        ("khala.executor.workareas", "WorkAreas", "give_back"),
        ("khala.executor.runner", None, "layout"),
        ("khala.executor.runner", None, "remove_workdir"),
        ("khala.sandbox.bwrap", "BwrapSandbox", "open_workdir"),
        ("khala.sandbox.bwrap", "BwrapSandbox", "prepare_workdir"),
        ("khala.sandbox.core", "CoreSandbox", "run"),
        ("khala.sandbox.warm.pool", "WarmSandbox", "_take"),
        ("khala.sandbox.warm.box", "WarmBox", "begin"),
        ("khala.sandbox.warm.box", "WarmBox", "reset"),
        ("khala.sandbox.warm.box", "WarmBox", "prepare"),
        ("khala.sandbox.warm.pool", "WarmProcess", "release"),
        ("khala.executor.runner", None, "_record"),
        ("khala.executor.slots", "Slots", "_set_status"),
        ("khala.executor.streaming", "Streams", "open"),
        ("khala.executor.streaming", "Streams", "finish"),
        ("khala.executor.workdirs", None, "remove_tree"),
        ("khala.sandbox.bwrap", "BwrapSandbox", "close_workdir"),
    ],
    "judicator": [
        ("khala.judicator.service", "JudicatorService", "add"),
        ("khala.judicator.service", "JudicatorService", "report"),
        ("khala.judicator.service", "JudicatorService", "_apply_report"),
        ("khala.judicator.service", "JudicatorService", "_long_poll"),
        ("khala.judicator.service", "JudicatorService", "wake"),
        ("khala.judicator.service", "JudicatorService", "hand_in"),
        ("khala.judicator.notifier", "Notifier", "wait"),
        ("khala.store.sqlite.store", "SqliteStore", "has_queued"),
        ("khala.store.sqlite.store", "SqliteStore", "assign"),
        ("khala.store.sqlite.store", "SqliteStore", "add"),
        ("khala.rpc.handler", "JudicatorHandler", "report"),
        ("khala.rpc.handler", "JudicatorHandler", "add"),
    ],
}


def _install(role: str, out: str) -> None:
    lock = threading.Lock()
    sink = open(os.path.join(out, f"{role}-{os.getpid()}.trace"), "a", buffering=1)  # noqa: SIM115

    def wrap(name: str, func: Any) -> Any:
        @functools.wraps(func)
        def traced(*args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return func(*args, **kwargs)
            finally:
                line = f"{start:.6f} {time.time():.6f} {name} {threading.current_thread().name}\n"
                with lock:
                    sink.write(line)
        return traced

    for module_name, cls_name, attr in TARGETS[role]:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        owner = getattr(module, cls_name) if cls_name else module
        func = getattr(owner, attr, None)
        if func is not None:
            setattr(owner, attr, wrap(f"{cls_name or module_name.rsplit('.', 1)[1]}.{attr}",
                                      func))


def _role() -> str:
    argv = " ".join(sys.argv)
    for role in TARGETS:
        if f" {role}" in f" {argv}" and "khala" in argv:
            return role
    return ""


if os.environ.get("KHALA_TRACE_DIR") and (_role_name := _role()):
    _install(_role_name, os.environ["KHALA_TRACE_DIR"])
