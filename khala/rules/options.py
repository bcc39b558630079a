"""The checks of a step's options (`khala.model.StepOptions`): environment names and size, the
working directory inside the work area, the CPU rate, the host name. Pure; shared by the
gateway (API v2), the judicator (Thrift add) and the executor (which also owns the network
decision).
Raises InvalidInput naming the field.
"""

from __future__ import annotations

import math
import posixpath
import re

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.model import StepOptions, Task, env_size

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_ENV_NAME = 256
MAX_WORKDIR = 1024
INSIDE = "/work"  # the work area as a step sees it (khala/sandbox/bwrap.py INSIDE_WORKDIR)
CPU_RATE_MIN = 0.01  # a hundredth of a CPU: the cgroup's quota of 1 ms per 100 ms period
MAX_HOSTNAME = 64  # the kernel's __NEW_UTS_LEN
HOSTNAME_RE = re.compile(r"(?=.{1,64}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                         r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")


def check_env(field: str, env: object, max_bytes: int) -> None:
    if not isinstance(env, dict):
        raise InvalidInput(f"{field} must be an object of NAME: value")
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME.match(name) or len(name) > MAX_ENV_NAME:
            raise InvalidInput(f"{field}: {name!r} is not a variable name (letters, digits and "
                               f"_, not first a digit, at most {MAX_ENV_NAME} characters)")
        if not isinstance(value, str) or "\0" in value:
            raise InvalidInput(f"{field}.{name} must be text without NUL characters")
    size = env_size(env)
    if size > max_bytes:
        raise InvalidInput(f"{field} takes {size} bytes, more than the limit of {max_bytes} "
                           "(max_env_bytes)")


def inside_workdir(field: str, path: object) -> str:
    """The working directory relative to the work area ("" = its top): a relative path, or an
    absolute one under /work; never outside it."""
    if not isinstance(path, str) or "\0" in path or len(path) > MAX_WORKDIR:
        raise InvalidInput(f"{field} must be a path of at most {MAX_WORKDIR} characters")
    if path.startswith("/"):
        rel = posixpath.relpath(posixpath.normpath(path), INSIDE)
    else:
        rel = posixpath.normpath(path) if path else "."
    if rel == ".." or rel.startswith("../") or rel.startswith("/"):
        raise InvalidInput(f"{field} {path!r} is outside the work area {INSIDE}; give a "
                           f"directory inside it (relative, or under {INSIDE}/)")
    return "" if rel == "." else rel


def check_hostname(field: str, name: object) -> None:
    """A host name for the step's UTS namespace: "" (Khala's own) or RFC 1123 labels joined by
    dots, at most 64 characters (the kernel's bound)."""
    if not isinstance(name, str) or (name and not HOSTNAME_RE.match(name)):
        raise InvalidInput(f"{field} must be a host name: labels of a-z A-Z 0-9 and inner "
                           f"hyphens, joined by dots, at most {MAX_HOSTNAME} characters")


def check_cpu_rate(field: str, rate: object, maximum: float) -> None:
    if rate is None:
        return
    if (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate)
            or not CPU_RATE_MIN <= rate <= maximum):
        raise InvalidInput(f"{field} must be a number of CPUs from {CPU_RATE_MIN} to "
                           f"{maximum:g} (max_cpu_rate)")


def check_options(part: str, options: object, policy: LimitSettings) -> None:
    """Raise InvalidInput unless `options` (the `part` step's) may be accepted."""
    if not isinstance(options, StepOptions):
        raise InvalidInput(f"{part} options must be given as an object")
    check_env(f"{part}.env", options.env, policy.max_env_bytes)
    inside_workdir(f"{part}.workdir", options.workdir)
    check_cpu_rate(f"{part}.cpu_rate", options.cpu_rate, policy.max_cpu_rate)
    if not isinstance(options.network, bool):
        raise InvalidInput(f"{part}.network must be true or false")
    check_hostname(f"{part}.hostname", options.hostname)


def check_task_options(task: Task, policy: LimitSettings) -> None:
    check_options("compile", task.compile.options, policy)
    check_options("execute", task.execute.options, policy)
    if task.compile.language:  # a preset's commands name the program's files from /work
        for part, options in (("compile", task.compile.options),
                              ("execute", task.execute.options)):
            if inside_workdir(f"{part}.workdir", options.workdir):
                raise InvalidInput(
                    f"{part}.workdir: the {task.compile.language} preset's commands run in "
                    "/work, where the program's files are; a working directory is for steps "
                    "with commands of their own")
