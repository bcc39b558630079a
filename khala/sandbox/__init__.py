"""Sandboxes that run one compile or execute step of a task."""

from __future__ import annotations

from khala.errors import ConfigError
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox
from khala.sandbox.network import NetworkPolicy

__all__ = ["Limits", "RunOutcome", "RunSpec", "Sandbox", "open_sandbox"]


def open_sandbox(kind: str, warm: int = 0, network: NetworkPolicy | None = None) -> Sandbox:
    """`none` → plain process group (no isolation); `bwrap` → bubblewrap + cgroups, checked by
    running a trivial step (SandboxUnavailable if bubblewrap or cgroups do not work here).
    `warm` > 0 (bwrap only): keep that many warm sandboxes, reused clean across steps
    (`khala.sandbox.warm`); steps run cold when none is free or warm ones cannot be built.
    `network`: whether steps may have the network and what they may not reach (bwrap only)."""
    if warm < 0:
        raise ConfigError(f"warm_sandboxes must be 0 or more, not {warm}")
    if kind == "bwrap":
        from khala.sandbox.bwrap import BwrapSandbox, check_bwrap

        if warm > 0:
            from khala.sandbox.warm import WarmSandbox

            box = WarmSandbox(warm, network=network)
            try:
                return check_bwrap(box)
            except BaseException:
                box.close()
                raise
        cold = BwrapSandbox(network=network)
        try:
            return check_bwrap(cold)
        except BaseException:
            cold.close()
            raise
    if kind == "none":
        from khala.sandbox.plain import PlainSandbox

        return PlainSandbox()
    raise ConfigError(f"unknown sandbox {kind!r}")
