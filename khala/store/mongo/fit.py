"""Results that fit in one MongoDB document.

A task document holds the task (up to `max_task_size`) and its result: four output streams of
up to the executor's `result_limit` each (4 MiB by default), a judgement and the reports.
MongoDB refuses a document over 16 MiB (the client raises DocumentTooLarge for an update
statement that size; the server refuses an update whose resulting document is), and a finish
that can never be written would come back on every report of its executor: none of its results
would be recorded. So a result too large for its document is cut to fit, and the cut says so:
each step whose output was cut reports reason `output_limit` (what the executor records for an
output over its cap). A judgement whose cases' texts take more than half the room keeps its
cases' verdicts and usage but not their outputs (and, should even that not fit, not its cases);
its message says so. Files out (the cases' and a plain task's) go with the cases' texts: listed,
their content not kept. Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from khala.model import Judgement, OutputFile, Reason, Result, StepReport
from khala.store.codec import OUTPUT_FIELDS as STREAMS

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # MongoDB's maxBsonObjectSize
DOCUMENT_MARGIN = 64 * 1024  # field names, reports, judgement headers, BSON framing
TEXT_KEPT = 1024  # characters of a case's message kept when the cases' texts do not fit
CASES_CUT = "case outputs not kept: the result is larger than the store's document limit"
CASES_DROPPED = "cases not kept: the result is larger than the store's document limit"
FILE_NOT_KEPT = "not kept: the result is larger than the store's document limit"


def strip_files(files: list[OutputFile]) -> list[OutputFile]:
    """`files` listed without their content."""
    return [OutputFile(name=f.name, size=f.size, error=f.error or FILE_NOT_KEPT) for f in files]


def shares(lengths: list[int], budget: int) -> list[int]:
    """How many bytes of each stream to keep so that they sum to at most `budget`: every
    stream shorter than an equal share is kept whole, the rest split what remains equally."""
    keep = [0] * len(lengths)
    left = max(0, budget)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for done, i in enumerate(order):
        share = left // (len(lengths) - done)
        keep[i] = min(lengths[i], share)
        left -= keep[i]
    return keep


def _cut_report(report: StepReport | None) -> StepReport:
    return replace(report or StepReport(), reason=Reason.OUTPUT_LIMIT)


def fit_result(result: Result, budget: int) -> Result:
    """`result` with its output streams cut to `budget` bytes in all (unchanged if they fit);
    the report of each step whose output was cut says `output_limit`."""
    streams = [getattr(result, name) for name in STREAMS]
    keep = shares([len(s) for s in streams], budget)
    if keep == [len(s) for s in streams]:
        return result
    fitted = replace(result, compile_output=streams[0][:keep[0]],
                     compile_error=streams[1][:keep[1]], execute_output=streams[2][:keep[2]],
                     execute_error=streams[3][:keep[3]])
    # A stream kept whole as a stored file (Result.stored) loses only its inline first bytes.
    cut = [keep[i] < len(streams[i]) and STREAMS[i] not in result.stored for i in range(4)]
    if cut[0] or cut[1]:
        fitted = replace(fitted, compile_report=_cut_report(result.compile_report))
    if cut[2] or cut[3]:
        fitted = replace(fitted, execute_report=_cut_report(result.execute_report))
    return fitted


def output_budget(document_bytes: int, judgement_bytes: int,
                  limit: int = MAX_DOCUMENT_BYTES) -> int:
    """Bytes left for the four output streams in a task document whose other fields take
    `document_bytes` and whose judgement takes `judgement_bytes`."""
    return max(0, limit - DOCUMENT_MARGIN - document_bytes - judgement_bytes)


def strip_cases(judgement: Judgement, drop: bool = False) -> Judgement:
    """`judgement` without its cases' outputs and errors, messages cut to TEXT_KEPT (`drop`:
    without its cases at all); its message says what was left out."""
    if drop:
        cases = []
    else:
        cases = [replace(c, output="", error="", message=c.message[:TEXT_KEPT],
                         files=strip_files(c.files)) for c in judgement.cases]
    note = CASES_DROPPED if drop else CASES_CUT
    message = f"{judgement.message[:TEXT_KEPT]}; {note}" if judgement.message else note
    return replace(judgement, cases=cases, message=message)


def fit_document(result: Result, room: int, size: Callable[[Result], int]) -> Result:
    """`result` cut so that `size(result)` (its encoded size) fits in `room` bytes: the
    judgement's case texts first when they take more than half of it, then the streams."""
    bare = replace(result, compile_output=b"", compile_error=b"", execute_output=b"",
                   execute_error=b"")
    others = size(bare)
    original = result.judgement
    if result.files and others > room // 2:
        files = strip_files(result.files)
        result, bare = replace(result, files=files), replace(bare, files=files)
        others = size(bare)
    for drop in (False, True):
        if original is None or others <= (room if drop else room // 2):
            break
        judgement = strip_cases(original, drop)
        result, bare = replace(result, judgement=judgement), replace(bare, judgement=judgement)
        others = size(bare)
    fitted = fit_result(result, max(0, room - others))
    excess = size(fitted) - room  # the streams' own encoding: a few bytes each
    if excess > 0:
        kept = sum(len(getattr(fitted, name)) for name in STREAMS)
        fitted = fit_result(fitted, max(0, kept - excess))
    return fitted
