"""Large outputs of a finished task go to the file store before the result is handed in: a
stream longer than `result_inline` bytes is uploaded whole (a chunk per call, to any judicator)
and the result keeps its first PREVIEW bytes and its reference (Result.stored). A report then
never carries more than the inline bytes, however large `result_limit` is, and the task's
stored record stays small (MongoDB's document limit is 16 MiB; four streams of `result_limit`
each would not fit it).

If no judicator takes the upload (after a few tries) the stream is cut to `result_inline`
bytes and its step reports output_limit, as any output cut to fit is reported: the result is
handed in either way.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from khala.errors import KhalaError
from khala.files.transfer import FileCalls, send_bytes
from khala.model import OUTPUT_FIELDS, Reason, Result, StepReport

log = logging.getLogger(__name__)

PREVIEW = 64 * 1024  # first bytes of a stored stream kept in the result itself
TRIES = 5
BACKOFF = 0.5  # seconds before the second try, doubled for each next


def _cut(report: StepReport | None) -> StepReport:
    return replace(report or StepReport(), reason=Reason.OUTPUT_LIMIT)


def keep_large(result: Result, client: FileCalls, inline: int,
               stop: threading.Event | None = None) -> Result:
    """`result` with each stream longer than `inline` bytes stored as a file (see above)."""
    wait = stop or threading.Event()
    for name in OUTPUT_FIELDS:
        data: bytes = getattr(result, name)
        if len(data) <= inline or name in result.stored:
            continue
        delay = BACKOFF
        for attempt in range(TRIES):
            try:
                ref = send_bytes(client, data)
            except KhalaError as exc:
                log.warning("could not store %s (%d bytes), try %d: %s", name, len(data),
                            attempt + 1, exc)
                if wait.wait(delay):
                    break
                delay *= 2
                continue
            result = replace(result, stored={**result.stored, name: ref})
            setattr(result, name, data[:PREVIEW])
            break
        else:
            result = replace(result)
            setattr(result, name, data[:inline])
            report = f"{name.split('_', 1)[0]}_report"
            setattr(result, report, _cut(getattr(result, report)))
    return result
