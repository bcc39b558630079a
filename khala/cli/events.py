"""Following a task's event stream (API v2 Server-Sent Events, docs/streaming.md) from the
command line: its output as produced, then the final task. Standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

MAX_RECONNECTS = 20  # a stream cut this often: the caller falls back to waiting
READ_TIMEOUT = 60.0  # seconds without a byte (the gateway sends keepalives far more often)


def parse(lines: Iterator[str]) -> Iterator[tuple[str, str, str]]:
    """(event, id, data) of each event in an SSE line stream."""
    kind, ident = "", ""
    data: list[str] = []
    for line in lines:
        if line == "":
            if kind and data:
                yield kind, ident, "\n".join(data)
            kind, data = "", []
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


def _lines(reply: Any) -> Iterator[str]:
    for raw in reply:
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def follow(url: str, headers: dict[str, str], on_output: Callable[[str, str], None],
           on_status: Callable[[str], None]) -> dict[str, Any] | None:
    """Follow the stream at `url` (resuming with Last-Event-ID when cut) until its final `task`
    event, which is returned; None when the stream cannot be had (the caller then waits by
    polling)."""
    last = ""
    for _ in range(MAX_RECONNECTS):
        wanted = {**headers, "Accept": "text/event-stream"}
        if last:
            wanted["Last-Event-ID"] = last
        request = urllib.request.Request(url, headers=wanted)
        try:
            with urllib.request.urlopen(request, timeout=READ_TIMEOUT) as reply:  # noqa: S310
                for kind, ident, data in parse(_lines(reply)):
                    last = ident or last
                    body = json.loads(data)
                    if kind == "output" and "text" in body:
                        on_output(body["stream"], body["text"])
                    elif kind == "status":
                        on_status(body["status"])
                    elif kind == "task":
                        return body  # type: ignore[no-any-return]
        except urllib.error.HTTPError:
            return None  # refused (too many streams, an unknown task): wait instead
        except (urllib.error.URLError, OSError, ValueError):
            continue
    return None
