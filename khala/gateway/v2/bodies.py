"""A request body spooled to a temporary file a chunk at a time, bounded: packages and image
tars are larger than a gateway should hold in memory."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import BinaryIO, cast

from flask import request

from khala.files.refs import CHUNK
from khala.gateway.v2.errors import ApiError


@contextlib.contextmanager
def spooled_body(limit: int, setting: str, what: str) -> Iterator[BinaryIO]:
    """The body in a temporary file, at its start. 413 past `limit` bytes (named by its
    `setting`); 400 when empty (`what`: what the body should have been)."""
    request.max_content_length = limit
    with tempfile.TemporaryFile(prefix="khala-upload-") as fh:
        total = 0
        while chunk := request.stream.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise ApiError(413, f"the body is larger than {setting} ({limit})")
            fh.write(chunk)
        if not total:
            raise ApiError(400, f"the request has no body{what}")
        fh.seek(0)
        yield cast(BinaryIO, fh)  # a binary file: TemporaryFile's mode w+b
