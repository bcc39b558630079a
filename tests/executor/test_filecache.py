"""The executor's file cache (khala/executor/filecache.py) on disk, fetching through the file
calls of the client's interface (the in-memory StubJudicator, khala/rpc/stub.py): one fetch per
file, checked; corrupt and missing files fetched again; one fetch when two slots want a file at
once; the bound with pinned files; what survives a restart."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from khala.errors import ConfigError, NotFound
from khala.executor.filecache import FileCache
from khala.files.refs import CHUNK, FileRef
from khala.files.transfer import receive, send_bytes
from khala.rpc.stub import StubJudicator


class Source:
    """The judicators' side: a stub holding files, and a count of the fetches it served."""

    def __init__(self) -> None:
        self.stub = StubJudicator()
        self.fetched: list[str] = []
        self.gate: threading.Event | None = None  # when set, fetches wait for it

    def put(self, data: bytes) -> FileRef:
        return send_bytes(self.stub, data)

    def fetch(self, ref: FileRef, fh: BinaryIO) -> None:
        self.fetched.append(ref.sha256)
        if self.gate is not None:
            self.gate.wait(10)
        receive(self.stub, ref, fh.write)


@pytest.fixture
def source() -> Source:
    return Source()


def cache_at(root: Path, source: Source, capacity: int = 64 * CHUNK) -> FileCache:
    return FileCache(str(root), capacity, source.fetch)


def read(paths: dict[str, str], ref: FileRef) -> bytes:
    return Path(paths[ref.sha256]).read_bytes()


def test_fetched_once_then_hit_and_checked(tmp_path: Path, source: Source) -> None:
    data = os.urandom(3 * CHUNK + 5)
    ref = source.put(data)
    cache = cache_at(tmp_path / "c", source)
    with cache.holding([ref, ref]) as paths:
        assert read(paths, ref) == data
    with cache.holding([ref]) as paths:
        assert read(paths, ref) == data
        assert os.stat(paths[ref.sha256]).st_mode & 0o777 == 0o444
    assert source.fetched == [ref.sha256]
    assert (cache.counts.fetches, cache.counts.hits, cache.counts.fetched_bytes) == (
        1, 1, len(data))


def test_a_corrupt_or_missing_file_is_fetched_again(tmp_path: Path, source: Source) -> None:
    data = os.urandom(CHUNK + 1)
    ref = source.put(data)
    cache = cache_at(tmp_path / "c", source)
    with cache.holding([ref]):
        pass
    path = cache.path(ref.sha256)
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:  # same size, one byte changed
        fh.seek(100)
        fh.write(bytes([data[100] ^ 1]))
    with cache.holding([ref]) as paths:
        assert read(paths, ref) == data
    os.unlink(path)
    with cache.holding([ref]) as paths:
        assert read(paths, ref) == data
    assert len(source.fetched) == 3 and cache.counts.refetches == 2


def test_two_slots_wanting_one_file_fetch_it_once(tmp_path: Path, source: Source) -> None:
    ref = source.put(os.urandom(2 * CHUNK))
    cache = cache_at(tmp_path / "c", source)
    source.gate = threading.Event()
    got: list[bytes] = []

    def slot() -> None:
        with cache.holding([ref]) as paths:
            got.append(read(paths, ref))

    slots = [threading.Thread(target=slot) for _ in range(4)]
    for thread in slots:
        thread.start()
    deadline = time.monotonic() + 10
    while not source.fetched and time.monotonic() < deadline:
        time.sleep(0.01)
    source.gate.set()
    for thread in slots:
        thread.join(10)
    assert len(got) == 4 and len(set(got)) == 1
    assert source.fetched == [ref.sha256]


def test_a_failed_fetch_fails_every_waiter_and_is_retried_later(
        tmp_path: Path, source: Source) -> None:
    ref = FileRef("a" * 64, 10)  # the judicators do not have it
    cache = cache_at(tmp_path / "c", source)
    with pytest.raises(NotFound), cache.holding([ref]):
        pass
    real = source.put(b"0123456789")
    with cache.holding([real]) as paths:
        assert read(paths, real) == b"0123456789"
    assert not os.listdir(tmp_path / "c" / "tmp")


def test_the_bound_evicts_the_least_recently_used_but_never_a_pinned_file(
        tmp_path: Path, source: Source) -> None:
    refs = [source.put(os.urandom(CHUNK)) for _ in range(4)]
    cache = cache_at(tmp_path / "c", source, capacity=2 * CHUNK)
    with cache.holding(refs[:3]) as paths:  # 3 MiB pinned over a 2 MiB bound
        assert all(os.path.exists(p) for p in paths.values())
    assert cache.size <= 2 * CHUNK
    assert not os.path.exists(cache.path(refs[0].sha256))
    with cache.holding([refs[1]]):
        pass  # now refs[2] is the oldest
    with cache.holding([refs[3]]):
        pass
    assert os.path.exists(cache.path(refs[1].sha256))
    assert not os.path.exists(cache.path(refs[2].sha256))


def test_entries_survive_a_restart_and_are_checked_before_use(
        tmp_path: Path, source: Source) -> None:
    refs = [source.put(os.urandom(CHUNK)) for _ in range(3)]
    first = cache_at(tmp_path / "c", source)
    for ref in refs:
        with first.holding([ref]):
            pass
    with pytest.raises(ConfigError, match="in use"):
        cache_at(tmp_path / "c", source)  # one executor per cache directory
    first.close()
    path = first.path(refs[2].sha256)
    os.chmod(path, 0o644)
    Path(path).write_bytes(b"garbage")
    second = cache_at(tmp_path / "c", source, capacity=3 * CHUNK)
    assert second.size == 2 * CHUNK + len(b"garbage")
    with second.holding(refs) as paths:
        assert [read(paths, r) for r in refs] == [
            b"".join(source.stub.file_read(r.sha256, 0, CHUNK) for _ in [0]) for r in refs]
    assert source.fetched[3:] == [refs[2].sha256]  # only the corrupt one again
