"""`khala submit --language …`: the API v2 body of a judged task from the command line. Pure
apart from reading the named files.

Test cases come from `--case IN:OUT` (two files: the input and the expected output) or from
`--cases DIR` (its N.in with N.out or N.ans, ordered by N). `--time` is CPU seconds per case
(fractions allowed; the wall-clock limit is twice that plus a second, as on the website) and
`--memory` a size (256M, 1G, 65536K or bytes).
"""

from __future__ import annotations

import os
import re
from typing import Any

CASE_FILE = re.compile(r"^(\d+)\.(in|out|ans)$")
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]i?[bB]?|[bB])?\s*$")
UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class UsageError(Exception):
    """A command line that cannot make a task (exit 2)."""


def parse_size(text: str) -> int:
    """"256M" → bytes (K, M, G are powers of 1024; MiB/MB/M alike); bare digits are bytes."""
    match = SIZE.match(text)
    if match is None:
        raise UsageError(f"{text!r} is not a size such as 256M, 1G or 65536K")
    unit = (match.group(2) or "")[:1].lower()
    value = int(float(match.group(1)) * UNITS[unit])
    if value < 1:
        raise UsageError(f"{text!r} is less than a byte")
    return value


def parse_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a number of seconds such as 2 or 1.5") from None
    if not 0.001 <= value <= 2147483647:
        raise UsageError(f"{text!r} seconds is out of range (0.001 and up)")
    return int(value) if value.is_integer() else value


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None


def cases_from_args(pairs: list[str]) -> list[dict[str, str]]:
    """`--case IN:OUT` values → cases (the files' texts)."""
    cases = []
    for pair in pairs:
        given, sep, expected = pair.rpartition(":")
        if not sep or not given or not expected:
            raise UsageError(f"--case {pair!r}: give INPUT_FILE:EXPECTED_FILE")
        cases.append({"input": _read(given), "standard": _read(expected)})
    return cases


def cases_from_dir(directory: str) -> list[dict[str, str]]:
    """The cases of a directory: N.in with N.out (or N.ans), ordered by N."""
    if not os.path.isdir(directory):
        raise UsageError(f"--cases {directory}: not a directory")
    found: dict[int, dict[str, str]] = {}
    for name in os.listdir(directory):
        match = CASE_FILE.match(name)
        if match is None:
            continue
        part = "input" if match.group(2) == "in" else "standard"
        found.setdefault(int(match.group(1)), {})[part] = os.path.join(directory, name)
    if not found:
        raise UsageError(f"--cases {directory}: no N.in / N.out files")
    cases = []
    for number in sorted(found):
        paths = found[number]
        if set(paths) != {"input", "standard"}:
            raise UsageError(f"--cases {directory}: case {number} needs {number}.in and "
                             f"{number}.out")
        cases.append({"input": _read(paths["input"]), "standard": _read(paths["standard"])})
    return cases


def judged_body(language: str, files: list[dict[str, str]], cases: list[dict[str, str]],
                time: float | None, memory: int | None, compare: str) -> dict[str, Any]:
    """The API v2 task judging `files` (the program) in `language` on `cases`."""
    if not files:
        raise UsageError("give the program's source file")
    if not cases:
        raise UsageError("give test cases: --case IN:OUT … or --cases DIR")
    execute: dict[str, Any] = {"cases": cases, "compare": {"mode": compare}}
    if time is not None:
        execute["cpu_limit"] = time
        wall = round(time * 2 + 1, 3)
        execute["timeout"] = int(wall) if float(wall).is_integer() else wall
    if memory is not None:
        execute["memory_limit"] = memory
    return {"compile": {"language": language, "files": files}, "execute": execute}
