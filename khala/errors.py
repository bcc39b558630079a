"""One base exception; subclasses split by what the caller does about them.

Each class carries the two answers every API gives for it, stated once here: `code`, the
result code of the Thrift API and of the seed HTTP API (khala.model.Code), and `http_status`,
the HTTP status of the APIs that answer with one (API v2, Meproc's routes).
"""

from __future__ import annotations


class KhalaError(Exception):
    """Base of every error Khala raises on purpose."""

    #: ERROR: the work could not be done (a bug, a dependency down); a refusal below names its own.
    code = 1
    http_status = 500


class InvalidInput(KhalaError):
    """The caller sent something we cannot take; do not retry with the same input."""

    code = 4  # INVALID_INPUT
    http_status = 422


class TooLarge(InvalidInput):
    """The input is larger than the configured limit."""

    code = 3  # TOO_LARGE
    http_status = 413


class NotFound(KhalaError):
    """The named task (or job, or executor) does not exist, or is no longer in a state the call
    needs (e.g. done)."""

    code = 2  # NOT_EXIST
    http_status = 404


class Conflict(KhalaError):
    """The target exists in a state that forbids the call: a key naming a different task, a
    task already done (or not done yet), a job name taken or a job being deleted."""

    code = 5  # CONFLICT
    http_status = 409


#: The refusals: each travels as its own result code (the class's `code`); any other failure
#: is ERROR. Most specific first (TooLarge is an InvalidInput).
REFUSALS: tuple[type[KhalaError], ...] = (TooLarge, InvalidInput, NotFound, Conflict)


def refusal(code: int, message: str) -> KhalaError:
    """The refusal a result code stands for, or a plain KhalaError (ERROR) for any other code."""
    for kind in REFUSALS:
        if code == kind.code:
            return kind(message)
    return KhalaError(message)


class ConfigError(KhalaError):
    """A setting is missing or malformed; the node cannot start."""


class Unavailable(KhalaError):
    """A dependency (judicator, store, etcd) cannot be reached now; retrying may help."""

    http_status = 503


class Locked(Unavailable):
    """A record stayed locked by another writer for longer than a write waits (a FerretDB lock
    left by a judicator that died, until its liveness runs out); retrying later may help."""


class RemoteError(Unavailable):
    """A judicator answered but could not do the work (its ERROR code, or an answer that cannot
    be decoded). `address` names the judicator that answered."""

    def __init__(self, message: str, address: str = "") -> None:
        super().__init__(message)
        self.address = address


class SandboxUnavailable(KhalaError):
    """The requested sandbox cannot be set up on this host."""
