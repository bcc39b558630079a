"""The problem side of the store: problems, their numbered versions and rejudges, beside the
tasks (same SQLite file or MongoDB database). Each backend's `Store` carries its
`ProblemStore` as `store.problems`; what concerns tasks (which tasks name a version, rejudging
one) is the task store's (khala/store/base.py).

A version's number is never given twice, even after the version is deleted. A version being
deleted is marked first (`deleting`): no new task may name it then. Every write here is one
single-record write (an insert on a unique key, or a conditional update), so any number of
judicators may call at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from khala.files.refs import FileRef
from khala.problems.model import ProblemInfo, Rejudge, VersionInfo


class ProblemStore(ABC):
    @abstractmethod
    def create(self, problem: str, title: str, now: str) -> bool:
        """Insert-if-absent on the unique id; False when the id is taken."""

    @abstractmethod
    def retitle(self, problem: str, title: str) -> bool:
        """Change the title; False when there is no such problem."""

    @abstractmethod
    def get(self, problem: str) -> ProblemInfo | None:
        """The problem with its versions (oldest first), or None."""

    @abstractmethod
    def all(self) -> list[ProblemInfo]:
        """Every problem with its versions, by id."""

    @abstractmethod
    def add_version(self, problem: str, spec: FileRef, summary: dict[str, Any],
                    now: str) -> int:
        """Record a new version of an existing problem under the next number (never one given
        before); returns it."""

    @abstractmethod
    def version(self, problem: str, version: int) -> VersionInfo | None:
        """One version (marked or not), or None."""

    @abstractmethod
    def mark_version(self, problem: str, version: int, deleting: bool) -> bool:
        """Set or clear the version's `deleting` mark; False when there is no such version."""

    @abstractmethod
    def delete_version(self, problem: str, version: int) -> bool:
        """Delete a version; False when there was none."""

    @abstractmethod
    def delete(self, problem: str) -> bool:
        """Delete a problem that has no version left; False otherwise."""

    # ------------------------------------------------------------------ rejudges

    @abstractmethod
    def add_rejudge(self, rejudge: Rejudge) -> None:
        """Insert a new rejudge (its id set by the caller)."""

    @abstractmethod
    def rejudge(self, rejudge_id: str) -> Rejudge | None:
        """One rejudge as saved (its `done`/`pending` counts are the task store's)."""

    @abstractmethod
    def rejudges(self, problem: str | None = None) -> list[Rejudge]:
        """The rejudges of a problem (None: every problem's), oldest first."""

    @abstractmethod
    def save_rejudge(self, rejudge: Rejudge) -> None:
        """Replace a rejudge's saved state (state, cursor, total, detail)."""
