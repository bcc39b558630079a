"""One base exception; subclasses split by what the caller does about them."""


class KhalaError(Exception):
    """Base of every error Khala raises on purpose."""


class InvalidInput(KhalaError):
    """The caller sent something we cannot take; do not retry with the same input."""


class TooLarge(InvalidInput):
    """The input is larger than the configured limit."""


class ConfigError(KhalaError):
    """A setting is missing or malformed; the node cannot start."""


class Unavailable(KhalaError):
    """A dependency (judicator, store, etcd) cannot be reached now; retrying may help."""


class SandboxUnavailable(KhalaError):
    """The requested sandbox cannot be set up on this host."""
