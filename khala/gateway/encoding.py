"""Compressed answers of raw bytes (a task's output), chosen by the client's Accept-Encoding:
one parser and one response for every API that serves outputs."""

from __future__ import annotations

import gzip

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
    response = Response(data, mimetype="application/octet-stream")
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Vary"] = "Accept-Encoding"
    return response
