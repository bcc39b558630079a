"""Result codes ↔ the domain errors (khala.errors): the one error convention of the RPC layer.

The handler answers a refusal (`REFUSALS`) with its code and anything else with ERROR; the
client raises the refusal of a code, and RemoteError (naming the judicator) for ERROR or a code
it does not know."""

from __future__ import annotations

from khala.errors import REFUSALS, KhalaError, RemoteError, refusal
from khala.model import Code

__all__ = ["REFUSALS", "error_of", "code_of"]


def error_of(code: int, message: str, address: str = "") -> KhalaError:
    """The exception for a non-OK ReturnCode answered by the judicator at `address`; `message`
    says what was refused (the reply's detail, or the caller's words for the code)."""
    if code in {kind.code for kind in REFUSALS}:
        return refusal(code, message)
    name = Code(code).name if code in set(Code) else f"code {code}"
    return RemoteError(f"{message}: judicator at {address} answered {name}", address)


def code_of(exc: BaseException) -> int:
    """The ReturnCode answering `exc`: a refusal's own, else ERROR."""
    return exc.code if isinstance(exc, REFUSALS) else int(Code.ERROR)
