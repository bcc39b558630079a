"""A TCP relay that counts the bytes it carries each way: put between a gateway and a
judicator, it measures what really goes over the wire."""

from __future__ import annotations

import selectors
import socket
import threading


class CountingRelay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = 0  # client → target
        self.down = 0  # target → client
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.up = self.down = 0

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.up, self.down

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._pipe, args=(client,), daemon=True)
            thread.start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, (upstream, True))
        selector.register(upstream, selectors.EVENT_READ, (client, False))
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(0.5):
                    other, is_up = key.data
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    other.sendall(data)
                    with self._lock:
                        if is_up:
                            self.up += len(data)
                        else:
                            self.down += len(data)
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            upstream.close()

    def close(self) -> None:
        self._stop.set()
        self._server.close()
