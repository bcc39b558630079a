"""One base exception; subclasses split by what the caller does about them."""


class KhalaError(Exception):
    """Base of every error Khala raises on purpose."""

    #: The result code the HTTP and Thrift APIs answer for it (khala.model.Code): 1 ERROR, unless
    #: a refusal below names its own.
    code = 1


class InvalidInput(KhalaError):
    """The caller sent something we cannot take; do not retry with the same input."""

    code = 4  # INVALID_INPUT


class TooLarge(InvalidInput):
    """The input is larger than the configured limit."""

    code = 3  # TOO_LARGE


class NotFound(KhalaError):
    """The named task does not exist, or is no longer in a state the call needs (e.g. done)."""

    code = 2  # NOT_EXIST


class ConfigError(KhalaError):
    """A setting is missing or malformed; the node cannot start."""


class Unavailable(KhalaError):
    """A dependency (judicator, store, etcd) cannot be reached now; retrying may help."""


class RemoteError(Unavailable):
    """A judicator answered but could not do the work (its ERROR code, or an answer that cannot
    be decoded). `address` names the judicator that answered."""

    def __init__(self, message: str, address: str = "") -> None:
        super().__init__(message)
        self.address = address


class SandboxUnavailable(KhalaError):
    """The requested sandbox cannot be set up on this host."""
