"""Compressed answers of raw bytes (a task's output), chosen by the client's Accept-Encoding:
one parser and one response for every API that serves outputs, whole or streamed a chunk at a
time (an output kept as a stored file)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import brotli
from flask import Response

#: Other spellings of gzip: Procstar's clients ask for `gz`.
ALIASES = {"gz": "gzip", "x-gzip": "gzip"}


def choose_encoding(header: str) -> str | None:
    """br or gzip when Accept-Encoding asks for it (the higher q wins; br on a tie; `*` stands
    for both); None for neither."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        name = ALIASES.get(name, name)
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        weights[name] = max(q, weights.get(name, 0.0))
    star = weights.get("*", 0.0)
    best = max(("br", "gzip"), key=lambda n: (weights.get(n, star), n == "br"))
    return best if weights.get(best, star) > 0 else None


def encoded(data: bytes, accept_encoding: str) -> Response:
    """`data` as application/octet-stream, compressed as the client asked."""
    encoding = choose_encoding(accept_encoding)
    if encoding == "br":
        data = brotli.compress(data)
    elif encoding == "gzip":
        data = gzip.compress(data, mtime=0)
    return _answer(Response(data, mimetype="application/octet-stream"), encoding)


def encoded_stream(chunks: Iterator[bytes], accept_encoding: str) -> Response:
    """`chunks` streamed as application/octet-stream, each compressed as it comes."""
    encoding = choose_encoding(accept_encoding)
    body = _compressed(chunks, encoding)
    return _answer(Response(body, mimetype="application/octet-stream"), encoding)


def _answer(response: Response, encoding: str | None) -> Response:
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Vary"] = "Accept-Encoding"
    return response


def _compressed(chunks: Iterator[bytes], encoding: str | None) -> Iterator[bytes]:
    if encoding is None:
        yield from chunks
        return
    if encoding == "br":
        br = brotli.Compressor()
        for chunk in chunks:
            yield br.process(chunk)
        yield br.finish()
        return
    gz = zlib.compressobj(wbits=31)  # the gzip format
    for chunk in chunks:
        yield gz.compress(chunk)
    yield gz.flush()
