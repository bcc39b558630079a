"""The checker protocol (testlib's): how a checker is called and what its exit code means. Pure.

A checker runs as `<run command> input.txt output.txt answer.txt` in its own sandbox, with the
case's input, the program's output and the expected output; it writes its comment on stderr
(or stdout) and says its decision in the exit code. An interactor decides the same way
(khala/judging/interaction.py).

Partial points (exit code 7, testlib's `_points`): the value is read from the first line of
the checker's stderr — else of its stdout — that starts with the word `points` followed by a
number (testlib's `quitp(x, ...)` writes `points x ...`): the share of the case's weight it
earned, from 0 to 1 (the case earns weight × x). 1 is accepted, anything less partial; a line
missing, a value that is no number or outside 0..1 is the checker's failure (internal error).
"""

from __future__ import annotations

import math
import re

from khala.model import Reason, StepReport, Verdict

INPUT, OUTPUT, ANSWER = "input.txt", "output.txt", "answer.txt"
ARGS = f"{INPUT} {OUTPUT} {ANSWER}"
OUTPUTS_DIR = "outputs"  # the program's files out (Execute.outputs), beside output.txt

POINTS_EXIT = 7
# testlib's exit codes: _ok 0, _wa 1, _pe 2, _fail 3, _dirt 4, _points 7, _unexpected_eof 8.
EXIT_VERDICTS: dict[int, Verdict] = {
    0: Verdict.ACCEPTED,
    1: Verdict.WRONG_ANSWER,
    2: Verdict.WRONG_ANSWER,  # presentation error
    3: Verdict.INTERNAL_ERROR,  # the checker failed: the jury's fault, not the program's
    4: Verdict.WRONG_ANSWER,  # "dirt" after the answer
    POINTS_EXIT: Verdict.PARTIAL,  # points: read from its output (`points_of`)
    8: Verdict.WRONG_ANSWER,  # unexpected end of the output
}
EXIT_NAMES = {0: "ok", 1: "wrong answer", 2: "presentation error", 3: "checker failed",
              4: "extra output", POINTS_EXIT: "partial points", 8: "unexpected end"}
POINTS_LINE = re.compile(r"\s*points\s+(\S+)")


def points_of(stderr: str, stdout: str) -> float | None:
    """The number on the first `points <number>` line of `stderr`, else of `stdout`; None
    when there is none or it is no finite number."""
    for text in (stderr, stdout):
        for line in text.splitlines():
            found = POINTS_LINE.match(line)
            if found is None:
                continue
            try:
                value = float(found.group(1))
            except ValueError:
                return None
            return value if math.isfinite(value) else None
    return None


def decide(report: StepReport, stderr: str, stdout: str = "", weight: int = 1,
           who: str = "checker") -> tuple[Verdict, str, float]:
    """The case's verdict, message and points from the checker's (or interactor's) run. One
    that crashed, hit a limit or exited with a code testlib does not define is an internal
    error; so is exit 7 without valid points."""
    comment = (stderr.strip() or stdout.strip())
    if report.reason not in (Reason.OK, Reason.NONZERO_EXIT) or report.exit_code is None:
        return Verdict.INTERNAL_ERROR, f"{who} did not finish ({report.reason})", 0.0
    code = report.exit_code
    verdict = EXIT_VERDICTS.get(code)
    if verdict is None:
        return Verdict.INTERNAL_ERROR, f"{who} exited with unknown code {code}", 0.0
    name = EXIT_NAMES[code] if who == "checker" or code != 3 else f"{who} failed"
    message = f"{name}: {comment}" if comment else name
    if verdict == Verdict.ACCEPTED:
        return verdict, message, float(weight)
    if verdict != Verdict.PARTIAL:
        return verdict, message, 0.0
    value = points_of(stderr, stdout)
    if value is None:
        return (Verdict.INTERNAL_ERROR,
                f"{who} exited {POINTS_EXIT} (partial points) without a `points <number>` line",
                0.0)
    if not 0 <= value <= 1:
        return (Verdict.INTERNAL_ERROR,
                f"{who} gave points {value:g}; partial points are a share from 0 to 1", 0.0)
    if value == 1:
        return Verdict.ACCEPTED, message, float(weight)
    return Verdict.PARTIAL, message, weight * value
