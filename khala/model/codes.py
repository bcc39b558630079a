"""Status and return codes, reasons, verdicts and modes: the enums of the domain model and
how a value from outside (the wire, a stored document) reads as one of them."""

from __future__ import annotations

from enum import IntEnum, StrEnum

INT_MAX = 2147483647


#: The range of a task's priority (higher is dispatched first; absent = 0): the HTTP models and
#: the Thrift conversion both read it.
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
#: The priority of a rejudged task (docs/judging.md, "Rejudge"): below any a client may give,
#: so new submissions always go first. Only the judicator sets it.
REJUDGE_PRIORITY = PRIORITY_MIN - 1


class Status(IntEnum):
    """Task status codes of the HTTP API (seed 004)."""

    PENDING = 0
    COMPILING = 1
    COMPILE_FAILED = 2
    RUNNING = 3
    RUN_FAILED = 4
    SUCCESS = 5
    RETRYING = 6
    CANCELLED = 7
    UNKNOWN_ERROR = 8


# Which status may follow which, and when: khala/rules/lifecycle.py.


class Code(IntEnum):
    """Response codes shared by the HTTP API and the Thrift ReturnCode enum."""

    OK = 0
    ERROR = 1
    NOT_EXIST = 2
    TOO_LARGE = 3
    INVALID_INPUT = 4
    CONFLICT = 5  # API v2 methods only: the task is in the wrong state or the key is taken


class Reason(StrEnum):
    """Why a sandboxed step ended (its value is the string on the wire and in the store)."""

    OK = "ok"
    NONZERO_EXIT = "nonzero_exit"
    SIGNALED = "signaled"
    TIME_LIMIT = "time_limit"
    WALL_LIMIT = "wall_limit"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    PIDS_LIMIT = "pids_limit"
    INTERNAL_ERROR = "internal_error"
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    """How a judged test case (or a whole judged task) came out (docs/judging.md)."""

    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"  # the whole task: the source did not compile
    INTERNAL_ERROR = "internal_error"  # Khala's or the checker's failure, not the program's
    SKIPPED = "skipped"  # not run: an earlier case failed with stop_on_failure, or no build
    PARTIAL = "partial"  # the checker or interactor gave part of the case's points (exit 7)


class GroupPolicy(StrEnum):
    """How a group of cases scores (khala/judging/scoring.py)."""

    SUM = "sum"  # its points scaled by the share of its cases' weights earned
    MIN = "min"  # all or nothing: its points times the smallest share any of its cases earned


class CompareMode(StrEnum):
    """How a case's output is compared with its expected output (khala/judging/compare.py)."""

    EXACT = "exact"
    LINES = "lines"
    TOKENS = "tokens"
    FLOAT = "float"
    CHECKER = "checker"


STATUS_CODES = frozenset(int(s) for s in Status)
REASON_TEXTS = frozenset(r.value for r in Reason)
VERDICT_TEXTS = frozenset(v.value for v in Verdict)
COMPARE_MODES = frozenset(m.value for m in CompareMode)
GROUP_POLICIES = frozenset(p.value for p in GroupPolicy)


def status_of(code: object) -> Status:
    """A status code from outside (the wire); one that names no status reads Unknown error."""
    return Status(code) if code in STATUS_CODES else Status.UNKNOWN_ERROR


def reason_of(text: object) -> Reason:
    """A step's reason from outside (the wire, a stored document); text that names no reason
    reads internal_error."""
    return Reason(text) if text in REASON_TEXTS else Reason.INTERNAL_ERROR


def verdict_of(text: object) -> Verdict:
    """A verdict from outside; text that names none reads internal_error."""
    return Verdict(text) if text in VERDICT_TEXTS else Verdict.INTERNAL_ERROR


def group_policy_of(text: str) -> GroupPolicy:
    """A group's policy from outside; ValueError for an unknown one (callers refuse it)."""
    if text not in GROUP_POLICIES:
        raise ValueError(f"unknown group policy {text!r}; one of {sorted(GROUP_POLICIES)}")
    return GroupPolicy(text)


def compare_mode_of(text: str) -> CompareMode:
    """A comparison mode from outside; raises InvalidInput-worthy ValueError for an unknown one
    (callers turn it into their refusal)."""
    if text not in COMPARE_MODES:
        raise ValueError(f"unknown comparison mode {text!r}; one of {sorted(COMPARE_MODES)}")
    return CompareMode(text)
