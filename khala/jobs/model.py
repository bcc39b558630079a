"""Jobs as data: the spec a client gives, the state the scheduler keeps, the run keys, and
their JSON form in the store. Pure.

Every run of a job is an ordinary task submitted under a deterministic API v2 key (a unique
key in the store, claimed by insert-if-absent), so a run is created at most once whoever
submits it and however often:

    once, daemon:  <name>.<uid>.<generation>.<replica>.<run>
    cron:          <name>.<uid>.<generation>.<replica>.t<tick>.<attempt>

`uid` tells apart jobs that reuse a deleted job's name, `generation` counts restarts, `run`
counts a replica's runs (daemon restarts, once retries); numbers past the replica are base 36.

Every key that begins like a run key — a job name, a dot, six hex digits (an incarnation), a
dot — is reserved for runs: no client may submit a task under one (`is_run_key`), so a key the
scheduler computes is never already a stranger's.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from khala.model import Status, Task
from khala.store.codec import compile_from_dict, execute_from_dict

# The bounds of a job, stated once: the HTTP models (khala/gateway/v2/jobs.py) and the
# judicator's check (khala/jobs/validate.py) both read them.
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"  # a job's name, and each of its deps
NAME_RE = re.compile(NAME_PATTERN.removesuffix("$") + r"\Z")  # "$" would take a final newline
RUN_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}\.[0-9a-f]{6}\.")  # <name>.<uid>. …
RESERVED = "ids of the form <job name>.<6 hex digits>.… are reserved for job runs"
TYPES = ("once", "daemon", "cron")
MAX_REPLICA = 100
MAX_DEPS = 32
MAX_INTERVAL = 86400 * 366  # seconds from a daemon's run's end to its restart
MAX_RETRY_ATTEMPTS = 100
MAX_RETRY_BACKOFF = 86400  # seconds


@dataclass
class JobSpec:
    """What a client asks for (docs/jobs.md)."""

    name: str
    type: str
    template: Task
    replica: int = 1
    cron: str = "* * * * *"
    interval: float = 3.0  # daemon: seconds between a run's end and the next start
    deps: list[str] = field(default_factory=list)
    retry_attempts: int = 0  # once/cron: extra runs after a failed one
    retry_backoff: float = 1.0  # seconds before the first retry, doubled for each next one
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. Meproc's user/group names


@dataclass
class JobState:
    """What the scheduler keeps between passes (persisted with the job; `version` guards
    concurrent writes)."""

    uid: str = field(default_factory=lambda: secrets.token_hex(3))
    generation: int = 0
    created: str = ""
    started: bool = False  # dependencies were met and this generation's runs began
    cursor: list[int] = field(default_factory=list)  # per replica: its current run/attempt
    tick: int | None = None  # cron: the tick last fired (in clock units)
    skipped_to: int = 0  # cron: missed ticks up to this one are skipped (plan.py)
    fired: bool = False  # cron: `tick` was fired (False: it is the tick the job started in)
    outcome: str = ""  # "", "succeeded", "failed" (once: final; cron: of the last tick)
    blocked: str = ""  # why this job will never start (a dependency failed)
    streak: list[int] = field(default_factory=list)  # daemon, per replica: short runs in a row
    kept: list[str] = field(default_factory=list)  # keys of past runs kept, oldest first
    prune: list[str] = field(default_factory=list)  # keys of past runs to remove (plan.py)
    stopping: list[str] = field(default_factory=list)  # task ids being stopped
    stop_deadline: float = 0.0  # epoch seconds: then the stopping tasks are cancelled
    deleted: bool = False  # removed once `stopping` is empty
    stopped: bool = False  # stopped by a client: no runs until a restart
    last_start: str = ""
    last_end: str = ""
    version: int = 0


@dataclass
class JobRun:
    """One running task of a job, as clients see it."""

    id: str  # the run's key
    seed_id: str  # its 24-hex task id
    alias: str  # <name>:<replica>
    executor: str | None
    status: int


@dataclass
class JobView:
    """A job as clients see it: its spec, the template shown by its user, priority and
    command, and where it stands (`status`: waiting, running, scheduled, succeeded, failed,
    blocked, stopping, stopped, deleting, starting)."""

    name: str
    type: str
    replica: int
    cron: str
    interval: float
    deps: list[str]
    retry_attempts: int
    retry_backoff: float
    meta: dict[str, Any]
    user: int
    priority: int
    command: str
    status: str
    generation: int = 0
    created: str = ""
    tasks: list[JobRun] = field(default_factory=list)  # its running tasks
    last_start: str | None = None
    last_end: str | None = None
    blocked: str | None = None
    template: Task | None = None  # the runs' template, when asked for (op inspect)


@dataclass
class RunView:
    """What the scheduler sees of one run (a task)."""

    id: str
    key: str
    status: Status
    done: bool
    executor: str | None
    add_time: str
    report_time: str


def b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    number = max(0, number)
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


def run_key(spec: JobSpec, state: JobState, replica: int) -> str:
    """The key of replica `replica`'s current run (its cursor; for cron, of the current tick)."""
    base = f"{spec.name}.{state.uid}.{b36(state.generation)}.{replica}"
    run = state.cursor[replica] if replica < len(state.cursor) else 0
    if spec.type == "cron":
        return f"{base}.t{b36(state.tick or 0)}.{b36(run)}"
    return f"{base}.{b36(run)}"


def key_prefix(name: str) -> str:
    return f"{name}."


def is_run_key(key: str) -> bool:
    """Whether `key` lies in the namespace of run keys (reserved: only the scheduler submits
    tasks under such keys)."""
    return RUN_KEY_RE.match(key) is not None


# ----------------------------------------------------------------------------- JSON


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def template_to_dict(task: Task) -> dict[str, Any]:
    c, e = asdict(task.compile), asdict(task.execute)
    c["source"], e["data"] = _b64(task.compile.source), _b64(task.execute.data)
    return {"user": task.user, "priority": task.priority, "compile": c, "execute": e}


def template_from_dict(doc: dict[str, Any]) -> Task:
    c, e = dict(doc["compile"]), dict(doc["execute"])
    c["source"], e["data"] = base64.b64decode(c["source"]), base64.b64decode(e["data"])
    return Task(user=int(doc["user"]), priority=int(doc.get("priority", 0)),
                compile=compile_from_dict(c), execute=execute_from_dict(e))


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    doc = asdict(spec)
    doc["template"] = template_to_dict(spec.template)
    return doc


def spec_from_dict(doc: dict[str, Any]) -> JobSpec:
    return JobSpec(**{**doc, "template": template_from_dict(doc["template"])})


def state_to_dict(state: JobState) -> dict[str, Any]:
    doc = asdict(state)
    doc.pop("version")
    if not doc["stopped"]:  # written only when set: older judicators read the rest as before
        doc.pop("stopped")
    return doc


STATE_FIELDS = frozenset(f.name for f in fields(JobState)) - {"version"}


def state_from_dict(doc: dict[str, Any], version: int) -> JobState:
    """A stored state; fields a newer version added are ignored, those it lacks get their
    defaults."""
    return JobState(**{k: v for k, v in doc.items() if k in STATE_FIELDS}, version=version)
