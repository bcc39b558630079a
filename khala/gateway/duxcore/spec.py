"""A Duxcore service as Khala data (docs/duxcore.md). Pure.

A service is a **job** (docs/jobs.md) of type `once` without retries, created stopped, whose
template runs the service's `cmd` in its image; what Duxcore said about it travels in the job's
`meta` as JSON (`Record`): its config as given, the environment its runs have (`env`), the one
its next start gets (`pending_env`, PATCH …/env), and its bind contents' digest. Its job's name
is derived from its Duxcore id (`job_name`), as Duxcore ids are the core's, not Khala names.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.images.model import parse_image
from khala.jobs.model import JobSpec
from khala.model import Compile, Execute, StepOptions, Task
from khala.rules import identity
from khala.rules.options import check_env, check_hostname, inside_workdir
from khala.sandbox.cgroups import CPU_PERIOD_US

META_KEY = "duxcore"
JOB_PREFIX = "dx-"
MAX_ID = 256
MAX_ARGS = 4096  # cmd + shell items
MAX_PATH = 1024
BIND_WORKDIR = "/work/data"  # where the bind contents are (the execute step's data): the
# default working directory

PORT_MAP = ("port_map: Khala publishes no host ports (a service's network is a user network "
            "stack without inbound connections from the host); see docs/duxcore.md")
BIND_URL = ("bind_contents: Khala fetches no URL for a client (a server-side fetch could reach "
            "this cluster's own network); upload the archive instead: PUT /service/<id>/bind "
            "with the .tar or .tar.gz as the body; see docs/duxcore.md")
TTY = ("tty: Khala gives a service no terminal (its stdin is a pipe, through the live stream, "
       "when open_stdin is true); send tty false; see docs/duxcore.md")
NO_CMD = ("cmd is required: a Khala image is a root filesystem only, it carries no default "
          "command; see docs/duxcore.md")


class HostMapEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    HostIp: str | None = None
    HostPort: str


class Params(BaseModel):
    """RawConfig's params, as the seed lists them; any other key is refused by name."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=MAX_ID)
    image: str = Field(min_length=1, max_length=80)
    bind_dir: str = Field(min_length=1, max_length=MAX_PATH)
    bind_contents: str | None = None
    cmd: list[str] | None = None
    shell: list[str] | None = None
    user: str | None = Field(None, max_length=256)
    working_dir: str | None = Field(None, max_length=MAX_PATH)
    open_stdin: bool = True
    tty: bool | None = None
    hostname: str | None = Field(None, max_length=64)
    port_map: dict[str, HostMapEntry] | None = None
    network_disabled: bool | None = None
    max_cpu: int | None = Field(None, ge=1)
    max_ram: int | None = Field(None, ge=1)


class RawConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    params: Params


@dataclass
class Record:
    """What the job's meta keeps of a service."""

    id: str
    params: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)  # what its current runs have
    pending_env: dict[str, str] = field(default_factory=dict)  # what its next start gets
    bind: dict[str, Any] | None = None  # {"sha256", "bytes", "files"} of the bind contents
    created: str = ""

    def meta(self) -> dict[str, str]:
        return {META_KEY: json.dumps(asdict(self), sort_keys=True)}


def job_name(service_id: str) -> str:
    """The job of a Duxcore id: `dx-` and 24 hex digits of its SHA-256 (job names are
    1 to 32 of A-Z a-z 0-9 _ -; Duxcore ids are any text)."""
    return JOB_PREFIX + hashlib.sha256(service_id.encode()).hexdigest()[:24]


def record_of(meta: dict[str, Any]) -> Record | None:
    """The service a job's meta holds (None: the job is no service)."""
    text = meta.get(META_KEY)
    if not isinstance(text, str):
        return None
    try:
        doc = json.loads(text)
        return Record(**doc)
    except (ValueError, TypeError):
        return None


def check_params(params: Params, policy: LimitSettings) -> None:
    """InvalidInput (naming the field) for what Khala refuses or cannot do."""
    if params.bind_contents:
        raise InvalidInput(BIND_URL)
    if params.port_map:
        raise InvalidInput(PORT_MAP)
    if params.tty:
        raise InvalidInput(TTY)
    if not params.cmd:
        raise InvalidInput(NO_CMD)
    args = [*(params.cmd or []), *(params.shell or [])]
    if len(args) > MAX_ARGS or any("\0" in a for a in args):
        raise InvalidInput(f"cmd and shell: at most {MAX_ARGS} items, without NUL characters")
    if params.shell is not None and not params.shell:
        raise InvalidInput("shell must name a program (e.g. [\"/bin/sh\", \"-c\"])")
    parse_image(params.image)
    if params.working_dir:
        inside_workdir("working_dir", params.working_dir)
    if params.hostname:
        check_hostname("hostname", params.hostname)
    if params.max_cpu is not None:
        rate = params.max_cpu / CPU_PERIOD_US
        if not 0.01 <= rate <= policy.max_cpu_rate:
            raise InvalidInput(f"max_cpu must be within {CPU_PERIOD_US // 100}.."
                               f"{int(policy.max_cpu_rate * CPU_PERIOD_US)} µs per "
                               f"{CPU_PERIOD_US} µs period (max_cpu_rate)")
    if params.max_ram is not None and params.max_ram > policy.max_memory_limit:
        raise InvalidInput(f"max_ram must be at most {policy.max_memory_limit} bytes "
                           "(max_memory_limit)")


def check_env_patch(body: object, policy: LimitSettings) -> dict[str, str]:
    """The body of PATCH …/env: an object of variable names to text."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be an object of NAME: value")
    check_env("env", body, policy.max_env_bytes)
    return {str(k): str(v) for k, v in body.items()}


def command_of(params: Params) -> str:
    """The execute step's command: the service's process replaces the step's shell (`exec`),
    so its pid, signals and exit status are the service's. With `shell`, `cmd` is the shell's
    command line (Docker's shell form)."""
    return "exec " + shlex.join(argv_of(params))


def argv_of(params: Params) -> list[str]:
    cmd = list(params.cmd or [])
    return [*params.shell, " ".join(cmd)] if params.shell else cmd


def template_of(record: Record, policy: LimitSettings, user: int, data: bytes) -> Task:
    """The task every run of the service is: `true` to compile; the service's command to
    execute, with the policy's largest wall and CPU time and output (a service runs until it
    is stopped, within them), its limits, options and image; its bind contents as the work
    area's files (`data`, a zip)."""
    params = Params.model_validate(record.params)
    uid = gid = None
    if params.user:
        name, _, group = params.user.partition(":")
        uid, gid = identity.resolve(name, group or None,
                                    identity.parse(policy.run_users, policy.run_groups))
    options = StepOptions(
        env=dict(record.env),
        workdir=inside_workdir("working_dir", params.working_dir or BIND_WORKDIR),
        cpu_rate=None if params.max_cpu is None else params.max_cpu / CPU_PERIOD_US,
        network=params.network_disabled is False, hostname=params.hostname or "")
    execute = Execute(command=command_of(params), data=data, timeout=float(policy.max_timeout),
                      cpu_limit=float(policy.max_cpu_limit), memory_limit=params.max_ram,
                      output_limit=policy.max_output_limit, interactive=params.open_stdin,
                      run_uid=uid, run_gid=gid, options=options,
                      image=parse_image(params.image))
    return Task(user=user, compile=Compile(command="true"), execute=execute)


def spec_of(record: Record, policy: LimitSettings, user: int, data: bytes) -> JobSpec:
    """The service's job: once, one replica, no retry (a service that exits stays exited
    until a client starts it again)."""
    return JobSpec(name=job_name(record.id), type="once",
                   template=template_of(record, policy, user, data), replica=1,
                   retry_attempts=0, meta=record.meta())
