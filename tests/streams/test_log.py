"""The pure parts of live output: the bounded offset log, event ids, UTF-8 splitting, and the
stdin feed's bound."""

from __future__ import annotations

import os
import threading
import time

import pytest

from khala.streams.feed import InputGap, StdinFeed, Superseded
from khala.streams.log import (
    Chunk,
    Dropped,
    TaskLog,
    advance,
    event_id,
    new_position,
    parse_event_id,
    utf8_split,
)


def drain(log: TaskLog, position: dict[str, int]) -> list[Chunk | Dropped]:
    items: list[Chunk | Dropped] = []
    for _ in range(1000):
        batch = log.read(position, -1, 0)
        if not batch.items:
            return items
        for item in batch.items:
            advance(position, item)
        items += batch.items
    raise AssertionError("read never ended")


def test_reader_gets_chunks_in_order_from_its_offsets() -> None:
    log = TaskLog(1024)
    log.append("execute.stdout", b"ab")
    log.append("execute.stderr", b"E")
    log.append("execute.stdout", b"cd")
    position = new_position()
    position["execute.stdout"] = 1
    items = drain(log, position)
    assert items == [Chunk("execute.stdout", 1, b"b"), Chunk("execute.stderr", 0, b"E"),
                     Chunk("execute.stdout", 2, b"cd")]
    assert position["execute.stdout"] == 4 and drain(log, position) == []


def test_log_is_bounded_and_a_late_reader_gets_a_drop_marker() -> None:
    log = TaskLog(10)
    for i in range(100):
        log.append("execute.stdout", b"%04d\n" % i)
    items = drain(log, new_position())
    assert items[0] == Dropped("execute.stdout", 0, 490)
    assert b"".join(i.data for i in items[1:] if isinstance(i, Chunk)) == b"0098\n0099\n"


def test_end_wakes_readers_and_flushes_a_held_back_partial_character() -> None:
    log = TaskLog(100)
    log.append("execute.stdout", "é".encode()[:1])
    assert drain(log, new_position()) == []
    got: list[bool] = []
    reader = threading.Thread(target=lambda: got.append(log.read(new_position(), 0, 5).ended))
    reader.start()
    log.end(5)
    reader.join(5)
    assert got == [True]


def test_event_ids_round_trip_and_reject_garbage() -> None:
    position = {**new_position(), "execute.stdout": 42, "compile.stderr": 7}
    assert parse_event_id(event_id(position)) == position
    for bad in ("", "1.2.3", "a.b.c.d", "1.2.3.-4", "1.2.3.4.5"):
        assert parse_event_id(bad) is None


def test_utf8_split_keeps_characters_whole() -> None:
    data = "aé€😀".encode()
    for cut in range(len(data) + 1):
        head, tail = utf8_split(data[:cut])
        head.decode()  # never raises: only whole characters
        assert head + tail == data[:cut] and len(tail) <= 3


def test_stdin_feed_is_bounded_and_closes() -> None:
    feed = StdinFeed(b"first\n", 6)
    generation, accepted = feed.claim("s")
    assert accepted == 0
    assert feed.offer(generation, 0, b"more", 0.05) is None  # full (6 of 6 bytes) until written
    r, w = os.pipe()
    feed.start(w)
    assert os.read(r, 100) == b"first\n"
    assert feed.offer(generation, 0, b"more", 5) == 4
    assert os.read(r, 100) == b"more"
    feed.close_at(generation, 4)
    assert os.read(r, 100) == b""  # EOF once the queue is written
    assert feed.offer(generation, 4, b"late", 0.05) is None
    os.close(r)


def read_all(feed: StdinFeed) -> bytes:
    r, w = os.pipe()
    feed.start(w)
    out = b""
    while part := os.read(r, 100):
        out += part
    os.close(r)
    return out


def test_stdin_feed_reclaim_resumes_without_loss_or_repeat() -> None:
    """A sender that reconnects is told how much it gave and resends from there; bytes it
    resends that were already queued are not queued again."""
    feed = StdinFeed(b"", 100)
    first, _ = feed.claim("gateway-1")
    assert feed.offer(first, 0, b"one\n", 1) == 4
    second, accepted = feed.claim("gateway-1")  # the same sender again: its count stays
    assert accepted == 4
    with pytest.raises(Superseded):  # the old connection may give no more input
        feed.offer(first, 4, b"lost?\n", 1)
    assert feed.progress(first) is None and feed.progress(second) == 4
    assert feed.offer(second, 0, b"one\ntwo\n", 1) == 8  # "one\n" again: skipped
    with pytest.raises(InputGap):
        feed.offer(second, 9, b"x", 1)
    with pytest.raises(InputGap):
        feed.close_at(second, 9)
    feed.close_at(second, 8)
    assert read_all(feed) == b"one\ntwo\n"


def test_stdin_feed_other_sender_starts_at_zero_and_wakes_blocked_offer() -> None:
    feed = StdinFeed(b"", 3)
    old, _ = feed.claim("a")
    assert feed.offer(old, 0, b"abc", 1) == 3  # full now
    outcome: list[object] = []

    def blocked() -> None:
        try:
            outcome.append(feed.offer(old, 3, b"d", 30))
        except Superseded as exc:
            outcome.append(exc)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.1)
    new, accepted = feed.claim("b")
    thread.join(5)
    assert accepted == 0 and isinstance(outcome[0], Superseded)
    feed.stop()
    assert feed.offer(new, 0, b"x", 1) is None  # the step ended


def test_read_returns_at_a_wake_that_came_since_the_count() -> None:
    """The stream writer takes the count, then its input acknowledgements, then reads: a wake
    in between (input queued meanwhile) must not leave the read waiting its full timeout."""
    tasklog = TaskLog(100)
    since = tasklog.wakes()
    tasklog.wake()
    started = time.monotonic()
    batch = tasklog.read(new_position(), 0, 5.0, since)
    assert batch.items == [] and time.monotonic() - started < 1.0
    started = time.monotonic()
    tasklog.read(new_position(), 0, 0.2, tasklog.wakes())  # no wake since: waits
    assert time.monotonic() - started >= 0.2
