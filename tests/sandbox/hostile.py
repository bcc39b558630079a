"""Loading and checking the data-driven hostile-program cases of tests/sandbox/cases/<name>/.

case.toml holds the task and the expectation:

    description = "what the program tries"
    cancel_after = 0.5            # optional: set the cancel event after this many seconds
    [compile]                     # optional; fields of khala.model.Compile (not source)
    command = "gcc -o prog main.c"
    [[compile.entries]]           # optional raw zip entries (hostile names, symlinks)
    name = "../evil"; text = "x"  # or: symlink = "/etc/passwd"
    [execute]                     # fields of khala.model.Execute (not data)
    command = "./prog"
    [expect]
    status = 4                    # the task status run_task returns
    step = "execute"              # whose report `reason` (and exit_code/signal) is checked
    reason = "memory_limit"
    signal = 9                    # optional
    exit_code = 1                 # optional
    max_wall = 3.0                # optional bound on that step's wall time (wall-clock cases)
    min_cpu = 1.0                 # optional bounds on that step's CPU time (CPU-limit cases:
    max_cpu = 1.2                 # see "Bounds" below)
    contains = { execute_output = ["BLOCKED"] }      # Result fields that must contain …
    not_contains = { execute_output = ["root:"] }    # … or must not contain
    host_absent = ["/usr/khala-evil"]                # host paths that must not exist after
    refused = true                # optional: a judicator refuses the task at `add` (default:
                                  # true when compile.entries is given — a hostile zip)
    [expect_in_image]             # optional: what differs when the steps run in an image
    contains = { execute_output = ["NOT-SETUID"] }   # (its keys replace [expect]'s)
    [settings]                    # optional ExecutorSettings for this case (the run_task suite
    disk_limit = 16777216         # only; cases with settings are left out end to end)

Bounds: a wall-time bound is only load-independent where the wall clock itself is what stops
the step (a wall limit, a cancel). A CPU-limit case means "the CPU limit stops the program
promptly", and on a loaded machine the busy loop gets a fraction of a core, so its wall time says
nothing about the watcher (1.00 s of CPU has been measured at 3.3–4.2 s wall). It is bounded in
CPU time instead: the step burns CPU for as long as the limit goes unnoticed, so a slow or broken
watcher shows as CPU time beyond the limit whatever the load, while a loaded machine slows both
the program and the watcher and adds no CPU time. `min_cpu` says the limit was really reached.

Files under src/ become the compile source zip, files under data/ the execute data zip.
Commands and host_absent may use {other_task} (a host dir holding secret.txt), {host_pid} (a
host process that must survive), {host_port} (a port listening on the host's loopback),
{work_base} (the executor's work dir root) and {marker} (a string only in the host process's
command line).
"""

from __future__ import annotations

import io
import math
import os
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from khala.model import Compile, Execute, Result, Task

CASES_DIR = Path(__file__).parent / "cases"


@dataclass
class Case:
    name: str
    path: Path
    doc: dict[str, Any]
    expect: dict[str, Any] = field(default_factory=dict)


def case_names(shared_settings: bool = False) -> list[str]:
    """All cases; with `shared_settings` only those that need no settings of their own."""
    names = sorted(p.name for p in CASES_DIR.iterdir() if (p / "case.toml").is_file())
    if shared_settings:
        names = [n for n in names if "settings" not in load_case(n).doc]
    return names


def refused(case: Case) -> bool:
    """Whether a judicator refuses the case's task at `add` (its zips are unsafe)."""
    return bool(case.expect.get("refused", bool(case.doc.get("compile", {}).get("entries"))))


def load_case(name: str) -> Case:
    path = CASES_DIR / name
    with open(path / "case.toml", "rb") as fh:
        doc = tomllib.load(fh)
    return Case(name=name, path=path, doc=doc, expect=doc.get("expect", {}))


def in_image(case: Case) -> Case:
    """The case as run in an image: [expect_in_image]'s keys over [expect]'s."""
    return Case(name=case.name, path=case.path, doc=case.doc,
                expect={**case.expect, **case.doc.get("expect_in_image", {})})


def zip_dir(directory: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(directory.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(directory).as_posix())
    return buf.getvalue()


def zip_entries(entries: list[dict[str, str]]) -> bytes:
    """A zip with raw entry names: hostile paths and symlink entries are written as given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry["name"])
            info.create_system = 3
            if "symlink" in entry:
                info.external_attr = (0o120777 << 16)
                zf.writestr(info, entry["symlink"])
            else:
                info.external_attr = (0o100644 << 16)
                zf.writestr(info, entry.get("text", ""))
    return buf.getvalue()


def substitute(text: str, subst: dict[str, str]) -> str:
    """Replace {name} placeholders of `subst` only (commands are full of other braces)."""
    for key, value in subst.items():
        text = text.replace("{" + key + "}", value)
    return text


def build_task(case: Case, subst: dict[str, str], pace: float = 1.0) -> Task:
    """The case's task; its steps' wall timeouts times `pace` (tests/sandbox/pace.py)."""
    comp = dict(case.doc.get("compile", {}))
    execute = dict(case.doc.get("execute", {}))
    for part in (comp, execute):
        if "timeout" in part:
            part["timeout"] = math.ceil(part["timeout"] * pace)
    entries = comp.pop("entries", None)
    source = b""
    if entries:
        source = zip_entries(entries)
    elif (case.path / "src").is_dir():
        source = zip_dir(case.path / "src")
    data = zip_dir(case.path / "data") if (case.path / "data").is_dir() else b""
    for part in (comp, execute):
        if "command" in part:
            part["command"] = substitute(part["command"], subst)
    return Task(id=f"case-{case.name}", compile=Compile(source=source, **comp),
                execute=Execute(data=data, **execute))


def check_result(case: Case, status: int, result: Result, subst: dict[str, str],
                 pace: float = 1.0) -> list[str]:
    """Every way `status`/`result` differ from the case's expectation (empty = as expected);
    a wall-time bound is the case's times `pace`."""
    exp = case.expect
    problems = []
    if status != exp["status"]:
        problems.append(f"status {status} != {exp['status']}")
    step = exp.get("step")
    if step:
        report = getattr(result, f"{step}_report")
        if report is None:
            problems.append(f"no {step} report")
        else:
            if report.reason != exp["reason"]:
                problems.append(f"{step} reason {report.reason!r} != {exp['reason']!r}")
            for key in ("exit_code", "signal"):
                if key in exp and getattr(report, key) != exp[key]:
                    problems.append(f"{step} {key} {getattr(report, key)} != {exp[key]}")
            if "max_wall" in exp and report.wall_time > exp["max_wall"] * pace:
                problems.append(f"{step} wall time {report.wall_time} > "
                                f"{exp['max_wall']} × {pace:.1f}")
            if "max_cpu" in exp and report.time > exp["max_cpu"]:
                problems.append(f"{step} CPU time {report.time} > {exp['max_cpu']}")
            if "min_cpu" in exp and report.time < exp["min_cpu"]:
                problems.append(f"{step} CPU time {report.time} < {exp['min_cpu']}")
    def text(attr: str) -> str:  # outputs are bytes; cases name text
        return bytes(getattr(result, attr)).decode("utf-8", errors="replace")

    for attr, needles in exp.get("contains", {}).items():
        problems += [f"{attr} lacks {n!r}" for n in needles if n not in text(attr)]
    for attr, needles in exp.get("not_contains", {}).items():
        problems += [f"{attr} has {n!r}" for n in needles if n in text(attr)]
    for path in exp.get("host_absent", []):
        if os.path.lexists(substitute(path, subst)):
            problems.append(f"host path {path} exists")
    return problems
