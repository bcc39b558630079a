"""Sandboxes that run one compile or execute step of a task."""

from __future__ import annotations

from khala.errors import ConfigError
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox

__all__ = ["Limits", "RunOutcome", "RunSpec", "Sandbox", "open_sandbox"]


def open_sandbox(kind: str) -> Sandbox:
    """`none` → plain process group (no isolation); `bwrap` → bubblewrap + cgroups, checked by
    running a trivial step (SandboxUnavailable if bubblewrap or cgroups do not work here)."""
    if kind == "bwrap":
        from khala.sandbox.bwrap import check_bwrap

        return check_bwrap()
    if kind == "none":
        from khala.sandbox.plain import PlainSandbox

        return PlainSandbox()
    raise ConfigError(f"unknown sandbox {kind!r}")
