"""RequestFraming: when the gateway's event loop has read a whole request (pure logic)."""

from __future__ import annotations

from khala.gateway.serve.worker import MAX_HEAD, RequestFraming

HEAD = b"POST /api/task HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"


def feed_bytewise(framing: RequestFraming, data: bytes) -> int | None:
    """The index of the byte that completed the request, None if it never did."""
    for i in range(len(data)):
        if framing.feed(data[i : i + 1]):
            return i
    return None


def test_get_is_complete_at_the_end_of_its_head() -> None:
    request = b"GET /api/test HTTP/1.1\r\nHost: x\r\n\r\n"
    assert feed_bytewise(RequestFraming(100), request) == len(request) - 1


def test_body_of_content_length() -> None:
    assert feed_bytewise(RequestFraming(100), HEAD + b"0123456789") == len(HEAD) + 9
    framing = RequestFraming(100)
    assert not framing.feed(HEAD + b"01234")
    assert framing.feed(b"56789")
    assert RequestFraming(100).feed(HEAD + b"0123456789")


def test_body_beyond_the_limit_is_handed_on_after_the_head() -> None:
    assert feed_bytewise(RequestFraming(9), HEAD + b"0123456789") == len(HEAD) - 1


def test_chunked_body_ends_with_the_last_chunk() -> None:
    head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"5\r\nhello\r\n0\r\n\r\n"
    assert feed_bytewise(RequestFraming(100), head + body) == len(head + body) - 1


def test_malformed_length_and_oversized_head_are_handed_on() -> None:
    bad = b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n"
    assert feed_bytewise(RequestFraming(100), bad) == len(bad) - 1
    framing = RequestFraming(100)
    assert not framing.feed(b"GET /" + b"a" * (MAX_HEAD - 10))
    assert framing.feed(b"a" * 20)
