"""The records the nodes pass beside tasks: an executor's row, searches and pages of the task
list, an executor's assignment, a submission's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from khala.model.task import Task


@dataclass
class ExecutorInfo:
    id: str
    hostname: str
    report_time: str


@dataclass
class SearchQuery:
    id: str | None = None
    user: int | None = None
    start_time: str | None = None  # canonical TIME_FORMAT
    end_time: str | None = None
    old_to_new: bool = False
    limit: int = 0  # 0 = no limit
    page: int = 0


@dataclass
class Assignment:
    """A judicator's answer to an executor's report: tasks to run, ids of tasks to stop or forget,
    ids (with the reason) of assigned tasks that could not be decoded and must be handed back as
    failed, and the address of the judicator that answered ("" when built by the judicator)."""

    assign: list[Task] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    undecodable: list[tuple[str, str]] = field(default_factory=list)
    judicator: str = ""
    signals: list[tuple[str, int]] = field(default_factory=list)  # (task id, signum), API v2


@dataclass
class PageQuery:
    """One page of the task list (API v2): filters, order, and a keyset cursor — the
    (add_time, id) of the last task of the previous page — so that tasks added meanwhile
    neither repeat nor shift the pages."""

    user: int | None = None
    statuses: list[int] = field(default_factory=list)  # empty = any
    start_time: str | None = None  # canonical TIME_FORMAT, inclusive
    end_time: str | None = None
    old_to_new: bool = False
    limit: int = 100
    after_time: str | None = None  # cursor: strictly after this (add_time, id) in the order
    after_id: str | None = None
    key_prefix: str | None = None  # only tasks whose key starts with it


@dataclass
class SubmitOutcome:
    """What one keyed or unkeyed submission did."""

    code: int  # Code.OK, INVALID_INPUT, TOO_LARGE, CONFLICT, ERROR
    id: str = ""  # the task's seed id (24 hex)
    created: bool = False  # False with Code.OK: an identical task existed under the key
    detail: str = ""
