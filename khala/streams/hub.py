"""The executor's stream endpoint: live output of its running tasks, and their input.

Each task the executor runs gets a `TaskStream` (its bounded `TaskLog` and, for interactive
tasks, its `StdinFeed`). The endpoint is a TCP server (one thread per connection, at most
`max_clients`; beyond them a connection is answered `busy` at once, khala/net/acceptor.py): a
gateway connects, proves the cluster secret when the executor has one (khala/rpc/auth.py),
names a task and a position, and receives the chunks past it as they are produced (wire.py).
The handshake and that first frame come before a slot is taken, within one deadline and the
`handshake` caps (in all and per address): a client that drips them, or cannot prove the
secret, holds no slot and sees no task. A connection that asks for input claims the task's input
(the newest claim holds it), is told how much of its sender's input is already queued, and may
then send input at byte offsets and close it; the connection's writer acknowledges what was
queued, and says when the input is closed. A connection asking `once` gets what the log holds
past its position and a `now` frame, and ends (a snapshot of the output so far). Sending blocks
only that connection's thread (a slow gateway falls behind in the log and gets `dropped`
markers); the task itself never waits for a reader.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from khala.net.acceptor import Acceptor
from khala.net.admission import GreetLimits
from khala.net.deadline import Deadline, send_all
from khala.rpc.auth import ACCEPTED, NodeAuth
from khala.streams import wire
from khala.streams.feed import InputGap, StdinFeed, Superseded
from khala.streams.log import STREAMS, Chunk, TaskLog, advance

log = logging.getLogger(__name__)

#: Seconds a finished task's log stays served, so that attached readers can drain its tail.
LINGER_SECONDS = 10.0
#: A send to a gateway blocked this long ends the connection.
SEND_TIMEOUT = 30.0
#: How often the input reader looks again whether its connection and the input still stand,
#: while no frame comes (an idle user) or the stdin queue stays full (a program that reads
#: nothing yet): neither ends the reading, only the connection's end or the input's does.
INPUT_WAIT = 1.0
#: Bound of one wait on the log (the connection re-checks that it is still wanted).
READ_WAIT = 1.0
#: A connection with nothing to send for this long gets a `tick` frame (followers use it to
#: notice dead clients and connections).
TICK_SECONDS = 5.0


class Refused(Exception):
    """A connection that did not send its first frame properly (`quiet`: it went away)."""

    def __init__(self, message: str, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


class TaskStream:
    """The live side of one running task."""

    def __init__(self, capacity: int, feed: StdinFeed | None) -> None:
        self.log = TaskLog(capacity)
        self.feed = feed


class StreamHub:
    """The registry of this executor's task streams, and the TCP endpoint serving them."""

    def __init__(self, listen: str, capacity: int, input_capacity: int,
                 max_clients: int, auth: NodeAuth | None = None,
                 handshake: GreetLimits | None = None) -> None:
        host, _, port = listen.rpartition(":")
        self.capacity, self.input_capacity = capacity, input_capacity
        self._auth = auth
        self._streams: dict[str, TaskStream] = {}
        self._retire: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server((host or "127.0.0.1", int(port)), backlog=64)
        self.address = "{}:{}".format(*self._server.getsockname()[:2])
        self._acceptor = Acceptor(self._server, max(1, max_clients), self._serve,
                                  refuse=self._refuse, name="khala-stream-hub",
                                  greet=self._greet, greet_limits=handshake,
                                  what="a stream connection")

    def start(self) -> None:
        self._acceptor.start()

    def close(self) -> None:
        self._stop.set()
        self._acceptor.stop(2.0)
        self._server.close()

    # ------------------------------------------------------------------ tasks

    def open(self, task_id: str, interactive: bool, initial: bytes) -> TaskStream:
        feed = StdinFeed(initial, self.input_capacity) if interactive else None
        stream = TaskStream(self.capacity, feed)
        with self._lock:
            self._streams[task_id] = stream
        return stream

    def finish(self, task_id: str, status: int) -> None:
        """The task ended: readers get its tail and the end; the log goes after LINGER."""
        with self._lock:
            stream = self._streams.get(task_id)
            self._retire.append((time.monotonic() + LINGER_SECONDS, task_id))
        if stream is not None:
            stream.log.end(status)
            if stream.feed is not None:
                stream.feed.stop()

    def get(self, task_id: str) -> TaskStream | None:
        with self._lock:
            now = time.monotonic()
            while self._retire and self._retire[0][0] <= now:
                _, old = self._retire.pop(0)
                self._streams.pop(old, None)  # attached readers keep their reference
            return self._streams.get(task_id)

    # ------------------------------------------------------------------ endpoint

    @staticmethod
    def _refuse(conn: socket.socket) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall(wire.encode({"type": "busy"}))
        except OSError:
            pass

    def _greet(self, conn: socket.socket, deadline: Deadline) -> dict[str, Any]:
        """The handshake (with a secret) and the first frame, by `deadline`: the frame."""
        if self._auth is not None:
            self._auth.verify(conn, deadline)  # AuthError: refused, logged by the acceptor
            send_all(conn, ACCEPTED, deadline)
        try:
            header, _ = wire.read_frame(conn, deadline)
        except TimeoutError:
            raise Refused(f"no first frame within {deadline.seconds:g} s") from None
        except wire.FrameError as exc:
            # a client that just goes away (a port probe) is not worth a warning
            raise Refused(f"no first frame: {exc}",
                          quiet=str(exc) == "connection closed") from None
        return header

    def _serve(self, conn: socket.socket, header: dict[str, Any]) -> None:
        try:
            conn.settimeout(SEND_TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, wire.SOCKET_BUFFER)
            stream = self.get(str(header.get("task", "")))
            if header.get("type") != "follow" or stream is None:
                conn.sendall(wire.encode({"type": "unknown"}))
                return
            position = _position(header.get("position"))
            claim = None
            if header.get("input") and stream.feed is not None:
                claim = _Claim(stream.feed, str(header.get("sender", "")))
                conn.sendall(wire.encode({"type": "input", "accepted": claim.acked}))
                threading.Thread(target=self._read_input, args=(conn, stream.log, claim),
                                 daemon=True, name="khala-stream-input").start()
            elif header.get("input"):
                conn.sendall(wire.encode({"type": "no_input"}))  # not an interactive task
            self._send_log(conn, stream, position, claim, bool(header.get("once")))
        except (OSError, wire.FrameError) as exc:
            log.debug("stream connection ended: %s", exc)

    def _send_log(self, conn: socket.socket, stream: TaskStream,
                  position: dict[str, int], claim: _Claim | None, once: bool = False) -> None:
        """Chunks past `position` as they come, to the task's end; `once`: what there is now,
        then a `now` frame with the status, and the connection ends."""
        status = -1
        sent = time.monotonic()
        while not self._stop.is_set():
            since = stream.log.wakes()  # input accepted after this wakes the read below
            frames = claim.news() if claim is not None else []
            batch = stream.log.read(position, status, 0 if frames else READ_WAIT, since)
            for item in batch.items:
                if isinstance(item, Chunk):
                    frames.append(wire.encode(
                        {"type": "chunk", "stream": item.stream, "offset": item.offset},
                        item.data))
                else:
                    frames.append(wire.encode({"type": "dropped", "stream": item.stream,
                                               "start": item.start, "end": item.end}))
                advance(position, item)
            if batch.status != status and not batch.ended:
                status = batch.status
                frames.append(wire.encode({"type": "status", "status": status}))
            if once and not batch.items and not batch.ended:
                frames.append(wire.encode({"type": "now", "status": batch.status}))
            if not frames and time.monotonic() - sent >= TICK_SECONDS:
                frames.append(wire.encode({"type": "tick"}))
            if frames:
                conn.sendall(b"".join(frames))
                sent = time.monotonic()
            if batch.ended and not batch.items:
                conn.sendall(wire.encode({"type": "end", "status": batch.status}))
                return
            if once and not batch.items:
                return

    @staticmethod
    def _read_input(conn: socket.socket, tasklog: TaskLog, claim: _Claim) -> None:
        """Input frames of one connection into the feed, while its claim holds the input."""
        feed, generation = claim.feed, claim.generation
        try:
            while True:
                if not wire.wait_readable(conn, INPUT_WAIT):
                    continue  # the user types nothing: the connection stays, and so do we
                header, data = wire.read_frame(conn)
                kind, offset = header.get("type"), header.get("offset")
                offset = offset if isinstance(offset, int) and offset >= 0 else None
                if kind == "close":
                    feed.close_at(generation, offset)
                    tasklog.wake()  # the writer tells the sender (`closed`)
                    return
                if kind == "input" and data:
                    accepted = feed.offer(generation, offset, data, INPUT_WAIT)
                    while accepted is None and feed.taking():  # the program reads nothing yet
                        accepted = feed.offer(generation, offset, data, INPUT_WAIT)
                    if accepted is None:
                        return  # the input was closed or the step ended: nothing more to take
                    tasklog.wake()  # the writer acknowledges it now
        except Superseded:
            pass  # a newer connection holds the input; the writer says so (`news`)
        except InputGap as exc:  # the sender skipped bytes: end the connection, it resends
            log.warning("stream input refused: %s", exc)
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (OSError, wire.FrameError):
            pass  # the sender went away; the input stays open for its next connection


class _Claim:
    """One connection's hold on a task's input; `news` are the frames its writer owes the
    gateway: how much input was accepted (`ack`), and `superseded` once a newer claim holds
    the input."""

    def __init__(self, feed: StdinFeed, sender: str) -> None:
        self.feed = feed
        self.generation, self.acked = feed.claim(sender)
        self.current = True
        self.told_closed = False

    def news(self) -> list[bytes]:
        if not self.current:
            return []
        accepted = self.feed.progress(self.generation)
        if accepted is None:
            self.current = False
            return [wire.encode({"type": "superseded"})]
        frames = []
        if accepted != self.acked:
            self.acked = accepted
            frames.append(wire.encode({"type": "ack", "accepted": accepted}))
        if not self.told_closed and self.feed.closed():  # after the last ack
            self.told_closed = True
            frames.append(wire.encode({"type": "closed"}))
        return frames


def _position(value: Any) -> dict[str, int]:
    if not isinstance(value, list) or len(value) != len(STREAMS):
        return dict.fromkeys(STREAMS, 0)
    return {name: max(0, int(v)) if isinstance(v, int) else 0
            for name, v in zip(STREAMS, value, strict=True)}
