"""Sandboxes that run one compile or execute step of a task."""

from __future__ import annotations

from khala.errors import ConfigError
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox

__all__ = ["Limits", "RunOutcome", "RunSpec", "Sandbox", "open_sandbox"]


def open_sandbox(kind: str) -> Sandbox:
    """`none` → plain process group. Other kinds come with the sandbox backends."""
    if kind == "none":
        from khala.sandbox.plain import PlainSandbox

        return PlainSandbox()
    raise ConfigError(f"unknown sandbox {kind!r}")
