"""The executor's stream endpoint (khala/streams/hub.py) keeps reading a connection's input
however long its sender is idle, and however long the program leaves its stdin unread: only
the connection's end or the input's end stops the reading. In-process hub, real sockets."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from khala.streams import hub as hub_module
from khala.streams.client import StreamConnection
from khala.streams.hub import StreamHub
from khala.streams.log import STREAMS
from tests.fixtures.waiting import until


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StreamHub]:
    monkeypatch.setattr(hub_module, "SEND_TIMEOUT", 0.5)  # a socket timeout an idle user outlasts
    opened = StreamHub("127.0.0.1:0", 1 << 20, 16, 4)  # a 16-byte stdin queue
    opened.start()
    yield opened
    opened.close()


def follow(hub: StreamHub, task_id: str) -> tuple[StreamConnection, list[dict[str, Any]]]:
    conn = StreamConnection(hub.address, task_id, dict.fromkeys(STREAMS, 0), True, "s1")
    frames: list[dict[str, Any]] = []

    def read() -> None:
        try:
            for header, _ in conn.frames():
                frames.append(header)
        except OSError:
            pass

    threading.Thread(target=read, daemon=True).start()
    until(lambda: any(f["type"] == "input" for f in frames), 10, "the input claim")
    return conn, frames


def acked(frames: list[dict[str, Any]]) -> int:
    return max([f["accepted"] for f in frames if f["type"] in ("ack", "input")], default=0)


def test_input_after_an_idle_spell_longer_than_the_socket_timeout_is_read(
    hub: StreamHub,
) -> None:
    stream = hub.open("t1", True, b"")
    conn, frames = follow(hub, "t1")
    conn.send_input(0, b"abc")
    until(lambda: acked(frames) == 3, 10, "the first input acknowledged")
    threading.Event().wait(1.5)  # idle: three socket timeouts
    conn.send_input(3, b"def")
    until(lambda: acked(frames) == 6, 10, "input after the idle spell acknowledged")
    assert not any(f["type"] == "superseded" for f in frames)
    assert stream.feed is not None and stream.feed.taking()
    conn.close()


def test_input_waits_while_the_program_reads_nothing_then_goes_in(hub: StreamHub) -> None:
    stream = hub.open("t2", True, b"")
    conn, frames = follow(hub, "t2")
    conn.send_input(0, b"x" * 16)  # fills the queue
    conn.send_input(16, b"y" * 8)  # waits for room: longer than a wait of the reader
    until(lambda: acked(frames) == 16, 10, "the first 16 bytes acknowledged")
    threading.Event().wait(2.5)  # the program reads nothing yet: the reader waits on
    assert acked(frames) == 16
    assert stream.feed is not None
    read_end, write_end = os.pipe()
    stream.feed.start(write_end)  # the step starts reading its stdin
    until(lambda: acked(frames) == 24, 10, "the rest acknowledged once there was room")
    got = b""
    while len(got) < 24:
        got += os.read(read_end, 64)
    assert got == b"x" * 16 + b"y" * 8
    os.close(read_end)
    conn.close()


def frames_of(hub: StreamHub, task_id: str, want_input: bool, once: bool,
              position: int = 0) -> list[tuple[dict[str, Any], bytes]]:
    conn = StreamConnection(hub.address, task_id, dict.fromkeys(STREAMS, position), want_input,
                            "s1", once=once)
    try:
        return list(conn.frames())
    finally:
        conn.close()


def test_once_answers_what_the_log_holds_now_and_ends(hub: StreamHub) -> None:
    stream = hub.open("t-once", interactive=False, initial=b"")
    stream.log.append("execute.stdout", b"one\n")
    stream.log.append("execute.stderr", b"two\n")
    stream.log.set_status(3)
    got = frames_of(hub, "t-once", False, True)
    assert [(h["type"], h.get("stream"), d) for h, d in got] == [
        ("chunk", "execute.stdout", b"one\n"), ("chunk", "execute.stderr", b"two\n"),
        ("status", None, b""), ("now", None, b"")]
    assert got[-1][0]["status"] == 3
    assert [h["type"] for h, _ in frames_of(hub, "t-once", False, True, 4)] == ["status", "now"]
    hub.finish("t-once", 5)
    assert frames_of(hub, "t-once", False, True, 4)[-1][0] == {"type": "end", "status": 5}


def test_a_task_without_input_says_so(hub: StreamHub) -> None:
    hub.open("t-plain", interactive=False, initial=b"")
    assert frames_of(hub, "t-plain", True, True)[0][0] == {"type": "no_input"}


def test_the_close_of_the_input_is_told(hub: StreamHub) -> None:
    stream = hub.open("t-close", interactive=True, initial=b"")
    read, write = os.pipe()
    assert stream.feed is not None
    stream.feed.start(write)
    conn, frames = follow(hub, "t-close")
    conn.send_input(0, b"abc")
    until(lambda: acked(frames) == 3, 10, "the input queued")
    conn.close_input(3)
    until(lambda: any(f["type"] == "closed" for f in frames), 10, "the close told")
    assert os.read(read, 10) == b"abc" and os.read(read, 10) == b""  # then end of file
    conn.close()
    os.close(read)
    stream.feed.stop()
