"""Where the cases of a task judged against a stored problem come from: files in the executor's
file cache (khala/executor/filecache.py), handed to each run without a copy
(Sandbox.place_file), instead of texts carried by the task."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from khala.sandbox.base import Sandbox


@dataclass
class CaseFiles:
    inputs: list[str]  # host path of each case's input, in case order
    answers: list[str]  # and of its answer
    extras: dict[str, str] = field(default_factory=dict)  # name → host path: every build, data/
    cpu_seconds: float | None = None  # the problem's CPU limit for the task's language

    def answer_text(self, index: int, limit: int) -> str | None:
        """The case's answer as text, or None when it is longer than `limit` bytes (an output
        within the output limit cannot match it then)."""
        path = self.answers[index]
        if os.path.getsize(path) > limit:
            return None
        with open(path, "rb") as fh:
            return fh.read(limit + 1).decode("utf-8", errors="replace")

    def place_extras(self, sandbox: Sandbox, folder: str) -> None:
        """The extra files in `folder` (a prepared work dir's data/), each without a copy."""
        for name, path in self.extras.items():
            target = os.path.join(folder, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            sandbox.place_file(path, target)
