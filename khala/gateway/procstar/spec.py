"""A Procstar process spec (what POST /procs sends) as a Khala task. Pure.

    {"argv": ["/usr/bin/printf", "%s\\n", "hi"], "env": {"vars": {"LANG": "C"}}}

`argv` is the process's argument vector (argv[0] looked up on the sandbox's PATH); `env.vars`
adds environment variables to the sandbox's own. Khala's additions, all optional: `input`
(text written to its stdin, then EOF), `timeout` (wall seconds, 0 = none), `memory_limit`,
`cpu_limit`, `pids_limit` (as API v2's execute step) and `core_limit` (bytes of a core file the
process may write in its work area; none by default). The process runs as the execute step of
a task whose compile step does nothing; its id is the task's key `procs.<id>`.
"""

from __future__ import annotations

import re
import shlex

from pydantic import BaseModel, ConfigDict, Field

from khala.model import INT_MAX, Compile, Execute, Task
from khala.rules.limits import BYTES_LIMIT_MAX

#: Tasks that are Procstar processes have a key of this prefix (and the process id after it).
KEY_PREFIX = "procs."
ID_PATTERN = r"^[A-Za-z0-9._-]{1,58}$"  # a task key is at most 64 characters
ID_RE = re.compile(ID_PATTERN.removesuffix("$") + r"\Z")
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvSpec(Strict):
    vars: dict[str, str] = Field(default_factory=dict, description="variables to set")


class ProcSpec(Strict):
    argv: list[str] = Field(min_length=1, max_length=4096)
    env: EnvSpec | None = None
    input: str = Field("", description="Khala: text for its stdin (then EOF)")
    timeout: int = Field(0, ge=0, le=INT_MAX, description="Khala: wall seconds, 0 = none")
    memory_limit: int | None = Field(None, ge=1, le=BYTES_LIMIT_MAX)
    cpu_limit: int | None = Field(None, ge=1, le=INT_MAX)
    pids_limit: int | None = Field(None, ge=1, le=INT_MAX)
    core_limit: int | None = Field(None, ge=1, le=BYTES_LIMIT_MAX,
                                   description="Khala: bytes of a core file it may write")


class SpecError(ValueError):
    """A spec Khala cannot run (the message says why)."""


def script(spec: ProcSpec) -> str:
    """The execute step's shell script: the variables, then `exec` of argv (the process is
    the step's own, so its pid and status are the process's)."""
    lines = []
    for name, value in sorted((spec.env.vars if spec.env else {}).items()):
        if not re.match(ENV_NAME, name):
            raise SpecError(f"env.vars: {name!r} is not a variable name")
        lines.append(f"export {name}={shlex.quote(value)}")
    if any("\0" in a for a in spec.argv) or any(
            "\0" in v for v in (spec.env.vars.values() if spec.env else ())):
        raise SpecError("argv and env may not hold NUL characters")
    lines.append("exec -- " + shlex.join(spec.argv))
    return "\n".join(lines) + "\n"


def task_of(spec: ProcSpec, proc_id: str, user: int) -> Task:
    return Task(
        user=user, key=KEY_PREFIX + proc_id,
        compile=Compile(command="true"),
        execute=Execute(command=script(spec), input=spec.input, timeout=spec.timeout,
                        memory_limit=spec.memory_limit, cpu_limit=spec.cpu_limit,
                        pids_limit=spec.pids_limit, core_limit=spec.core_limit),
    )
