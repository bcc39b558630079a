"""Sandboxes that run one compile or execute step of a task."""

from __future__ import annotations

from khala.errors import ConfigError
from khala.sandbox.base import Limits, RunOutcome, RunSpec, Sandbox
from khala.sandbox.network import NetworkPolicy

__all__ = ["Limits", "RunOutcome", "RunSpec", "Sandbox", "open_sandbox"]


def open_sandbox(kind: str, warm: int = 0, network: NetworkPolicy | None = None,
                 warm_images: int = 4, warm_idle: float = 120.0) -> Sandbox:
    """`none` → plain process group (no isolation); `bwrap` → bubblewrap + cgroups, checked by
    running a trivial step (SandboxUnavailable if bubblewrap or cgroups do not work here).
    `warm` > 0 (bwrap only): keep that many warm sandboxes, reused clean across steps
    (`khala.sandbox.warm`); steps run cold when none is free or warm ones cannot be built.
    `network`: whether steps may have the network and what they may not reach (bwrap only).
    `warm_images`: images with warm boxes at once, `warm_idle`: seconds after which an
    image's unused boxes are closed."""
    if warm < 0:
        raise ConfigError(f"warm_sandboxes must be 0 or more, not {warm}")
    if warm_images < 0 or warm_idle <= 0:
        raise ConfigError(f"warm_images must be 0 or more ({warm_images}) and warm_image_idle "
                          f"above 0 ({warm_idle})")
    if kind == "bwrap":
        from khala.sandbox.bwrap import BwrapSandbox, check_bwrap

        if warm > 0:
            from khala.sandbox.warm import WarmSandbox

            box = WarmSandbox(warm, images=warm_images, idle=warm_idle, network=network)
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
