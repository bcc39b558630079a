"""Warm sandboxes: bubblewrap sandboxes built once and reused clean across steps. The pool
(`pool.py`, WarmSandbox), one box and its next step's stem (`box.py`), the box's init, pid 1
inside it (`box_init.py`, run from its source, not imported), and the shell script a step starts
with (`shell.py`). See docs/sandbox.md."""

from __future__ import annotations

from khala.sandbox.warm.pool import WarmSandbox

__all__ = ["WarmSandbox"]
