"""The checker protocol (testlib's): how a checker is called and what its exit code means. Pure.

A checker runs as `<run command> input.txt output.txt answer.txt` in its own sandbox, with the
case's input, the program's output and the expected output; it writes its comment on stderr
(or stdout) and says its decision in the exit code.
"""

from __future__ import annotations

from khala.model import Reason, StepReport, Verdict

INPUT, OUTPUT, ANSWER = "input.txt", "output.txt", "answer.txt"
ARGS = f"{INPUT} {OUTPUT} {ANSWER}"

# testlib's exit codes: _ok 0, _wa 1, _pe 2, _fail 3, _dirt 4, _points 7 (partial points are not
# supported: read as wrong answer), _unexpected_eof 8.
EXIT_VERDICTS: dict[int, Verdict] = {
    0: Verdict.ACCEPTED,
    1: Verdict.WRONG_ANSWER,
    2: Verdict.WRONG_ANSWER,  # presentation error
    3: Verdict.INTERNAL_ERROR,  # the checker failed: the jury's fault, not the program's
    4: Verdict.WRONG_ANSWER,  # "dirt" after the answer
    7: Verdict.WRONG_ANSWER,  # points
    8: Verdict.WRONG_ANSWER,  # unexpected end of the output
}
EXIT_NAMES = {0: "ok", 1: "wrong answer", 2: "presentation error", 3: "checker failed",
              4: "extra output", 7: "partial points (not supported)", 8: "unexpected end"}


def decide(report: StepReport, comment: str) -> tuple[Verdict, str]:
    """The case's verdict and message from the checker's run. A checker that crashed, hit a
    limit or exited with a code testlib does not define is an internal error."""
    comment = comment.strip()
    if report.reason not in (Reason.OK, Reason.NONZERO_EXIT) or report.exit_code is None:
        return Verdict.INTERNAL_ERROR, f"checker did not finish ({report.reason})"
    verdict = EXIT_VERDICTS.get(report.exit_code)
    if verdict is None:
        return Verdict.INTERNAL_ERROR, f"checker exited with unknown code {report.exit_code}"
    name = EXIT_NAMES[report.exit_code]
    return verdict, f"{name}: {comment}" if comment else name
