"""The script a warm box's stem runs to become a step. Pure.

The stem is made ahead (`box_init.py`): the system shell, started by the box's init (vfork)
on the step's pipes (stdin, stdout, stderr) and a control pipe, in a session of its own with
default signals; it says it is up and then reads this script from the control pipe.
When the step comes, the executor writes the script and the shell sets what the step needs —
/work as its cwd, the rlimits, stdin, exactly the step's environment — and execs the command.
So a step costs the wake-up of a small shell, not of a copy of the init's Python (the woken
fork of a Python process and its exec took ≈ 1 ms more; `python -m benchmarks.bounds --only
wake`).

`step_script` returns None for a step it cannot express exactly (a NUL byte, an environment
name that is not a shell name, an rlimit that is not a whole number of the shell's units, a
command that looks like an option, a script too large for one pipe buffer): such a step runs
cold.
"""

from __future__ import annotations

import re
import resource
import shlex
from collections.abc import Mapping, Sequence

from khala.sandbox.bwrap import INSIDE_WORKDIR

#: The stem's shell (the init execs it; it gets this on its command line): announce itself on
#: fd 4 (the stem's socket), close it, and run the script the executor writes to fd 3 (the
#: control pipe) when the step comes.
STEM_ARGV = ["/bin/sh", "-c", "printf x >&4 && exec 4>&- && . /dev/fd/3"]
#: What the stem's shell writes on fd 4 once it is up.
READY = b"x"
#: The script is written into an empty pipe at once: it must fit its buffer (64 KiB).
MAX_SCRIPT = 60 * 1024
#: rlimit → (the shell's `ulimit` flag, its unit in bytes or seconds)
ULIMIT = {
    resource.RLIMIT_CPU: ("-t", 1),
    resource.RLIMIT_FSIZE: ("-f", 512),
    resource.RLIMIT_NOFILE: ("-n", 1),
    resource.RLIMIT_STACK: ("-s", 1024),
    resource.RLIMIT_CORE: ("-c", 512),
}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def step_script(argv: Sequence[str], env: Mapping[str, str],
                limits: Sequence[tuple[int, int]], stdin: str | None,
                cwd: str = INSIDE_WORKDIR) -> str | None:
    """The script for one step: `argv` exec'd in `cwd` (/work or under it) with exactly `env`,
    the rlimits
    `limits` ((resource, value) pairs, hard = soft) and stdin from the file `stdin` (a path
    inside the sandbox; "" = /dev/null; None = keep fd 0, the live-input pipe). None if the
    shell cannot express the step exactly."""
    if not argv or not argv[0] or argv[0].startswith("-"):
        return None
    if any("\0" in text for text in (*argv, *env.values())):
        return None  # the cold path refuses it alike (no NUL in an exec's strings)
    if "\0" in cwd:
        return None
    lines = [f"cd {shlex.quote(cwd)} || exit 127", "umask 077",
             "unset PWD OLDPWD"]  # cd exports them; a step's environment is exactly `env`
    for which, value in limits:
        flag, unit = ULIMIT.get(which, ("", 0))
        if not unit or value < 0 or value % unit:
            return None
        lines.append(f"ulimit {flag} {value // unit} || exit 127")
    lines.append("exec 3<&-")  # the control pipe: not for the step
    if stdin is not None:
        lines.append(f"exec 0<{shlex.quote(stdin or '/dev/null')} || exit 127")
    for name, text in env.items():
        if not NAME.match(name):
            return None
        lines.append(f"export {name}={shlex.quote(text)}")
    lines += [_found(argv[0]), "exec " + " ".join(shlex.quote(arg) for arg in argv)]
    script = "\n".join(lines) + "\n"
    return script if len(script.encode()) <= MAX_SCRIPT else None


def _found(command: str) -> str:
    """A line that ends the step with 127 and a khala message when `command` is not there."""
    quoted = shlex.quote(command)
    test = f"[ -e {quoted} ]" if "/" in command else f"command -v {quoted} >/dev/null"
    why = "No such file or directory" if "/" in command else "command not found"
    return (f"{test} || {{ printf 'khala: cannot run %s: {why}\\n' {quoted} >&2; "
            "exit 127; }")
