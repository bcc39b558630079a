"""Building a judged task's program (and its checker) once: lay out the source, look the build
up in the compile cache, else compile in the sandbox and keep the declared outputs.

The result is an artifact directory on the host, private to the task, that every case copies
into its own fresh work dir.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field

from khala.config import ExecutorSettings
from khala.errors import InvalidInput
from khala.executor.compile_cache import CompileCache, OutputError, source_files
from khala.executor.stepopts import options_tag, run_step
from khala.executor.workdirs import CopyLimit, copy_tree, make_workdir, remove_workdir
from khala.judging.cache import cache_key
from khala.judging.presets import HostLanguage
from khala.model import Reason, StepOptions, StepReport
from khala.sandbox.base import Limits, RunSpec, Sandbox, SignalBox
from khala.zipcheck import ExtractLimit, extract_zip

STEP_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


@dataclass
class Program:
    """What to build: a source zip or one source file, and either a preset or a command."""

    source_zip: bytes = b""
    source_file: tuple[str, str] | None = None  # (name, text): a checker's single file
    language: HostLanguage | None = None
    command: str = ""  # without a preset
    limits: Limits = field(default_factory=Limits)
    signals: SignalBox | None = None  # API v2 signals for the compile step
    extra: dict[str, str] = field(default_factory=dict)  # name → host file, copied beside it
    options: StepOptions = field(default_factory=StepOptions)  # the task's compile options
    root: str | None = None  # an unpacked image the compile step runs in (None: the host's)
    image: str = ""  # that image's SHA-256 (a build in another image is another build)


@dataclass
class Build:
    """The outcome of building: `artifacts` is set when it succeeded."""

    artifacts: str | None = None
    ok: bool = False
    message: str = ""  # why it failed, for the user
    output: bytes = b""
    error: bytes = b""
    report: StepReport | None = None  # None when no compile step ran
    compiles: int = 0
    cache_hit: bool = False
    internal: bool = False  # the failure is Khala's, not the source's


def _lay_out(program: Program, workdir: str, settings: ExecutorSettings) -> str | None:
    """Unpack the source and write compile.sh; returns a user-facing problem or None."""
    s = settings
    try:
        extract_zip(program.source_zip, workdir, s.zip_max_bytes, s.zip_max_files,
                    s.unpack_timeout)
    except (ExtractLimit, InvalidInput) as exc:
        return f"[khala] source files: {exc}"
    if program.source_file is not None:
        name, text = program.source_file
        with open(os.path.join(workdir, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    for name, path in program.extra.items():  # a stored problem's files (headers, graders)
        target = os.path.join(workdir, name)
        if os.path.lexists(target):
            return f"[khala] the source holds {name}, a file of the problem; rename it"
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)
    host = program.language
    if host is not None and not os.path.isfile(os.path.join(workdir, host.preset.source)):
        return (f"[khala] the {host.name} preset compiles {host.preset.source}; the source has "
                "no such file")
    if os.path.lexists(os.path.join(workdir, "compile.sh")):
        return "[khala] the source holds compile.sh, a name Khala writes itself; rename it"
    command = host.compile_command if host is not None else program.command
    with open(os.path.join(workdir, "compile.sh"), "w", encoding="utf-8") as fh:
        fh.write(command + "\n")
    return None


def build(program: Program, sandbox: Sandbox, settings: ExecutorSettings, cache: CompileCache,
          cancel: threading.Event, artifacts: str, tag: str) -> Build:
    """Build `program` into the (empty, existing) directory `artifacts`."""
    workdir = make_workdir(tag, settings, "-build")
    try:
        sandbox.open_workdir(workdir, settings.disk_limit)
        problem = _lay_out(program, workdir, settings)
        if problem is not None:
            return Build(message=problem, error=problem.encode())
        host = program.language
        key = ""
        if host is not None:  # the options and the image may change the build: in its key
            command = host.compile_command + options_tag(program.options)
            version = host.version + (f" in image {program.image}" if program.image else "")
            key = cache_key(source_files(workdir), host.name, command,
                            host.preset.outputs, version)
            if cache.fetch(key, artifacts):
                return Build(artifacts=artifacts, ok=True, cache_hit=True)
        done = _compile(program, workdir, sandbox, cancel)
        if done.ok:
            _keep(done, program, workdir, cache, key, artifacts, settings)
        return done
    finally:
        remove_workdir(workdir, sandbox)


def _compile(program: Program, workdir: str, sandbox: Sandbox, cancel: threading.Event) -> Build:
    sandbox.prepare_workdir(workdir)
    spec = RunSpec(argv=["bash", "compile.sh"], workdir=workdir, env=dict(STEP_ENV),
                   limits=program.limits, signals=program.signals, root=program.root)
    outcome = run_step(sandbox, spec, program.options, cancel)
    done = Build(output=outcome.stdout, error=outcome.stderr, report=outcome.report, compiles=1)
    reason = outcome.report.reason
    done.ok = reason == Reason.OK
    done.internal = reason in (Reason.INTERNAL_ERROR, Reason.CANCELLED)
    if not done.ok:
        done.message = f"compile step ended: {reason}"
    return done


def _keep(done: Build, program: Program, workdir: str, cache: CompileCache, key: str,
          artifacts: str, settings: ExecutorSettings) -> None:
    """Move the build's products into `artifacts` (and the cache); a product that is missing
    or unsafe fails the build."""
    try:
        if program.language is not None:
            cache.store(key, workdir, program.language.preset.outputs, artifacts,
                        settings.disk_limit)
        else:
            copy_tree(workdir, artifacts, settings.disk_limit, skip=("compile.sh",))
        done.artifacts = artifacts
    except (OutputError, CopyLimit) as exc:
        done.ok = False
        done.message = f"[khala] {exc}"
        done.error += f"\n[khala] {exc}\n".encode()
