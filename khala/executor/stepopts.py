"""A step's options (`khala.model.StepOptions`) applied to its run: the environment over
Khala's own, the working directory (made inside the work dir), the CPU rate, the network. A
step the sandbox cannot run as asked (the network on an executor that does not allow it, a CPU
rate without the cgroup cpu controller) does not run: it ends with the reason in its stderr.
"""

from __future__ import annotations

import json
import posixpath
import threading
from dataclasses import asdict, replace

from khala.errors import InvalidInput
from khala.model import Reason, StepOptions, StepReport
from khala.rules.options import inside_workdir
from khala.sandbox.base import RunOutcome, RunSpec, Sandbox


def with_options(spec: RunSpec, options: StepOptions) -> RunSpec:
    """`spec` as `options` ask (InvalidInput for a working directory outside the work area:
    the judicator refused it already, this is the executor's own check)."""
    if options.plain():
        return spec
    cwd = inside_workdir("workdir", options.workdir)
    return replace(spec, argv=script_from(spec.argv, cwd), env={**spec.env, **options.env},
                   cwd=cwd, network=options.network, hostname=options.hostname,
                   limits=replace(spec.limits, cpu_rate=options.cpu_rate))


def script_from(argv: list[str], cwd: str) -> list[str]:
    """`argv` with its script named from the working directory `cwd`: Khala's steps run
    `bash NAME.sh`, NAME.sh at the top of the work dir, which a step started elsewhere reaches
    by a relative path (its cwd has no symlink: `make_cwd` refuses them)."""
    if not cwd or len(argv) != 2 or posixpath.isabs(argv[1]):
        return argv
    return [argv[0], posixpath.relpath(argv[1], cwd)]


def options_tag(options: StepOptions) -> str:
    """What of `options` tells two builds apart ("" for none: keys stay as they were)."""
    return "" if options.plain() else "\n#options " + json.dumps(asdict(options),
                                                                  sort_keys=True)


def refused(message: str) -> RunOutcome:
    """The outcome of a step that did not run because it cannot run as asked here."""
    return RunOutcome(b"", f"[khala] {message}\n".encode(),
                      StepReport(reason=Reason.INTERNAL_ERROR), detail=message)


def prepared(sandbox: Sandbox, spec: RunSpec, options: StepOptions) -> RunSpec | RunOutcome:
    """`spec` as `options` ask, its working directory made: ready for `sandbox.run`; or the
    outcome of its refusal when it cannot run as asked here."""
    try:
        spec = with_options(spec, options)
    except InvalidInput as exc:
        return refused(str(exc))
    why = sandbox.supports(spec)
    if why:
        return refused(why)
    if spec.cwd:
        try:
            sandbox.make_cwd(spec.workdir, spec.cwd)
        except OSError as exc:
            return refused(f"the working directory /work/{spec.cwd} cannot be made: "
                           f"{exc.strerror or exc}")
    return spec


def run_step(sandbox: Sandbox, spec: RunSpec, options: StepOptions,
             cancel: threading.Event) -> RunOutcome:
    """Run `spec` with `options` in `sandbox`, or refuse it with the reason."""
    ready = prepared(sandbox, spec, options)
    if isinstance(ready, RunOutcome):
        return ready
    return sandbox.run(ready, cancel)
