"""The comparison modes of a judged case: the program's output against the expected one. Pure.

Each returns None when the output is accepted, else a short message naming the first
difference (line or token numbers are 1-based). Line ends: CRLF and a lone CR read as LF in
every mode except exact.
"""

from __future__ import annotations

import math

from khala.model import Compare, CompareMode

MAX_SHOWN = 40  # characters of a token or line quoted in a message


def _show(text: str) -> str:
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…")


def _normal_lines(text: str) -> list[str]:
    """Lines without trailing whitespace, trailing empty lines dropped, CRLF/CR read as LF."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def exact(got: str, want: str) -> str | None:
    """Byte for byte (as text)."""
    if got == want:
        return None
    at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
              min(len(got), len(want)))
    return f"outputs differ at character {at + 1} (output {len(got)}, expected {len(want)})"


def lines(got: str, want: str) -> str | None:
    """Line by line, trailing whitespace on each line and trailing empty lines ignored."""
    if got == want:  # the usual right answer: one comparison, no split of a large output
        return None
    a, b = _normal_lines(got), _normal_lines(want)
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"line {i + 1}: got {_show(x)}, expected {_show(y)}"
    if len(a) != len(b):
        return f"got {len(a)} lines, expected {len(b)}"
    return None


def tokens(got: str, want: str) -> str | None:
    """Whitespace-separated tokens, any whitespace between them."""
    if got == want:
        return None
    a, b = got.split(), want.split()
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"token {i + 1}: got {_show(x)}, expected {_show(y)}"
    if len(a) != len(b):
        return f"got {len(a)} tokens, expected {len(b)}"
    return None


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value


def close(got: float, want: float, abs_tol: float, rel_tol: float) -> bool:
    """|got - want| <= abs_tol, or <= rel_tol * |want|; NaN equals only NaN, infinities only
    themselves."""
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    if math.isinf(want) or math.isinf(got):
        return got == want
    diff = abs(got - want)
    return diff <= abs_tol or diff <= rel_tol * abs(want)


def floats(got: str, want: str, abs_tol: float, rel_tol: float) -> str | None:
    """Tokens; where the expected token is a number the output's must be one within the
    tolerance, other tokens must be equal."""
    a, b = got.split(), want.split()
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        expected = _number(y)
        if expected is None:
            if x != y:
                return f"token {i + 1}: got {_show(x)}, expected {_show(y)}"
            continue
        value = _number(x)
        if value is None:
            return f"token {i + 1}: got {_show(x)}, expected the number {_show(y)}"
        if not close(value, expected, abs_tol, rel_tol):
            return (f"token {i + 1}: got {_show(x)}, expected {_show(y)} (abs_tol {abs_tol:g}, "
                    f"rel_tol {rel_tol:g})")
    if len(a) != len(b):
        return f"got {len(a)} tokens, expected {len(b)}"
    return None


def compare(spec: Compare | None, got: str, want: str) -> str | None:
    """Compare by `spec` (None: lines). Mode checker is not decided here (khala/judging/
    checker.py); asking it is a programming error."""
    mode = spec.mode if spec is not None else CompareMode.LINES
    if mode == CompareMode.EXACT:
        return exact(got, want)
    if mode == CompareMode.LINES:
        return lines(got, want)
    if mode == CompareMode.TOKENS:
        return tokens(got, want)
    if mode == CompareMode.FLOAT:
        assert spec is not None
        return floats(got, want, spec.abs_tol, spec.rel_tol)
    raise ValueError(f"mode {mode} is decided by a checker program")
