"""The file side of the judicator (docs/rpc.md, "Files"), on domain types: uploads in chunks,
reads in chunks, and the leader's sweep of files nothing refers to (and of task bodies no task
names).

Methods return domain values and raise the refusals (InvalidInput, TooLarge, NotFound); the
Thrift handler converts. The store does the work (khala/store/files.py); here are the bounds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from khala import model
from khala.config import JudicatorSettings
from khala.errors import TooLarge
from khala.files.refs import FileRef, check_digest
from khala.judicator.leader_loop import LeaderLoop
from khala.store.files import FileStore

log = logging.getLogger(__name__)


class FileApi:
    def __init__(self, store: FileStore, settings: JudicatorSettings) -> None:
        self.store = store
        self.settings = settings

    def begin(self, sha256: str, size: int) -> str:
        """An upload's id, or "" when the file is stored already. TooLarge beyond
        `max_file_size`."""
        check_digest(sha256)
        if size > self.settings.max_file_size:
            raise TooLarge(f"a file is at most max_file_size ({self.settings.max_file_size}) "
                           "bytes")
        return self.store.begin(sha256, size, model.now())

    def put(self, upload: str, offset: int, data: bytes) -> None:
        self.store.put(upload, offset, data)

    def end(self, upload: str) -> FileRef:
        return self.store.end(upload)

    def read(self, sha256: str, offset: int, length: int) -> bytes:
        check_digest(sha256)
        return self.store.read(sha256, offset, length)

    def sweep(self) -> int:
        """Remove files nothing refers to and nobody asked for within `files_grace`."""
        gone = self.store.sweep(model.time_before(self.settings.files_grace))
        if gone:
            log.info("file sweep removed %d file(s) nothing refers to", gone)
        return gone


def file_sweeper(api: FileApi, bodies: Callable[[], int],
                 is_leader: Callable[[], bool]) -> LeaderLoop:
    """The leader's sweep, every `files_sweep_interval` seconds: files, then task bodies no
    task names (`bodies`: Store.sweep_bodies, which keeps its own grace)."""
    def sweep_pass() -> None:
        api.sweep()
        gone = bodies()
        if gone:
            log.info("body sweep removed %d task bod%s no task names", gone,
                     "y" if gone == 1 else "ies")

    return LeaderLoop("file-sweep", api.settings.files_sweep_interval, is_leader, sweep_pass)
