"""The pure parts of live output: the bounded offset log, event ids, UTF-8 splitting, and the
stdin feed's bound."""

from __future__ import annotations

import os
import threading

from khala.streams.feed import StdinFeed
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
    assert not feed.put(b"more", 0.05)  # the queue is full (6 of 6 bytes) until written
    r, w = os.pipe()
    feed.start(w)
    assert os.read(r, 100) == b"first\n"
    assert feed.put(b"more", 5)
    assert os.read(r, 100) == b"more"
    feed.close()
    assert os.read(r, 100) == b""  # EOF once the queue is written
    assert not feed.put(b"late", 0.05)
    os.close(r)
