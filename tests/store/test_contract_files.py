"""The file store (khala/store/files.py) on SQLite and on the MongoDB-wire server (FerretDB):
uploads in chunks continued by another judicator's store, hashes checked, dedup, reads in
chunks, references and the sweep."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from khala.errors import InvalidInput, NotFound
from khala.files.refs import CHUNK, EMPTY, FileRef, chunks_of
from khala.store.base import Store
from tests.store.test_contract import at, opener, store  # noqa: F401 - fixtures used by name


def upload(store: Store, data: bytes, now: str = "") -> FileRef:  # noqa: F811
    sha = hashlib.sha256(data).hexdigest()
    upload_id = store.files.begin(sha, len(data), now or at(0))
    if upload_id:
        for offset, length in chunks_of(len(data)):
            store.files.put(upload_id, offset, data[offset:offset + length])
        return store.files.end(upload_id)
    return FileRef(sha, len(data))


def whole(store: Store, sha: str) -> bytes:  # noqa: F811
    return b"".join(store.files.chunks(sha))


def test_upload_in_chunks_reads_back_byte_exact(opener: Callable[[], Store]) -> None:  # noqa: F811
    first, second = opener(), opener()
    data = os.urandom(2 * CHUNK + 12345)
    sha = hashlib.sha256(data).hexdigest()
    upload_id = first.files.begin(sha, len(data), at(0))
    assert upload_id
    # the chunks go to both "judicators", the last first, one sent twice
    pieces = chunks_of(len(data))
    for i, (offset, length) in enumerate(reversed(pieces)):
        (first if i % 2 else second).files.put(upload_id, offset, data[offset:offset + length])
    second.files.put(upload_id, 0, data[:CHUNK])
    assert second.files.end(upload_id) == FileRef(sha, len(data))
    assert first.files.stat(sha) == len(data)
    assert whole(first, sha) == data
    assert first.files.read(sha, CHUNK + 5, 10) == data[CHUNK + 5:CHUNK + 15]
    assert first.files.read(sha, len(data) - 3, CHUNK) == data[-3:]
    assert first.files.read(sha, len(data), CHUNK) == b""
    # stored once: another upload of the same bytes has nothing to send
    assert second.files.begin(sha, len(data), at(1)) == ""


def test_wrong_or_missing_bytes_are_refused_and_nothing_is_kept(store: Store) -> None:  # noqa: F811
    data = os.urandom(CHUNK + 10)
    sha = hashlib.sha256(data).hexdigest()
    upload_id = store.files.begin(sha, len(data), at(0))
    store.files.put(upload_id, 0, data[:CHUNK])
    with pytest.raises(InvalidInput, match="do not hash"):
        store.files.end(upload_id)  # the last chunk never came
    assert store.files.stat(sha) is None
    with pytest.raises(NotFound):
        store.files.end(upload_id)  # gone with its failure
    upload_id = store.files.begin(sha, len(data), at(0))
    store.files.put(upload_id, 0, data[:CHUNK])
    store.files.put(upload_id, CHUNK, b"x" * 10)  # wrong bytes
    with pytest.raises(InvalidInput):
        store.files.end(upload_id)
    assert store.files.stat(sha) is None


def test_chunks_must_be_aligned_and_whole(store: Store) -> None:  # noqa: F811
    data = os.urandom(CHUNK + 10)
    upload_id = store.files.begin(hashlib.sha256(data).hexdigest(), len(data), at(0))
    for offset, length in ((1, 10), (0, 10), (CHUNK, 9), (2 * CHUNK, 1), (-CHUNK, CHUNK)):
        with pytest.raises(InvalidInput):
            store.files.put(upload_id, offset, b"a" * length)
    with pytest.raises(NotFound):
        store.files.put("0123456789abcdef01234567", 0, b"a")
    with pytest.raises(InvalidInput):
        store.files.begin("not-a-digest", 1, at(0))
    with pytest.raises(InvalidInput):
        store.files.read(hashlib.sha256(b"").hexdigest(), 0, CHUNK + 1)
    with pytest.raises(NotFound):
        store.files.read(hashlib.sha256(b"nothing").hexdigest(), 0, 10)


def test_empty_file(store: Store) -> None:  # noqa: F811
    assert upload(store, b"") == FileRef(EMPTY, 0)
    assert store.files.stat(EMPTY) == 0
    assert whole(store, EMPTY) == b""


def test_racing_uploads_of_the_same_bytes_keep_one_file(opener: Callable[[], Store]) -> None:  # noqa: F811
    stores = [opener() for _ in range(4)]
    data = os.urandom(CHUNK + 77)
    sha = hashlib.sha256(data).hexdigest()
    ids = [s.files.begin(sha, len(data), at(0)) for s in stores]
    assert all(ids)  # none was stored yet

    def send(i: int) -> FileRef:
        for offset, length in chunks_of(len(data)):
            stores[i].files.put(ids[i], offset, data[offset:offset + length])
        return stores[i].files.end(ids[i])

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(send, range(4))) == {FileRef(sha, len(data))}
    assert whole(stores[0], sha) == data


def test_an_end_asked_again_while_the_first_works_keeps_the_file(
        opener: Callable[[], Store]) -> None:  # noqa: F811
    """A client whose file_end timed out asks again on a fresh connection (khala/rpc/
    failover.py) while the first end is still reading the chunks back: whichever call
    answers, the file stays whole (the second must not take the first's chunks for a
    duplicate's). The one that comes too late finds no upload (or, on disk, no upload file)."""
    first, second = opener(), opener()
    for attempt in range(3):
        data = os.urandom(6 * CHUNK + attempt)
        sha = hashlib.sha256(data).hexdigest()
        upload_id = first.files.begin(sha, len(data), at(0))
        for offset, length in chunks_of(len(data)):
            first.files.put(upload_id, offset, data[offset:offset + length])

        def end(store: Store) -> FileRef | None:  # noqa: F811
            try:
                return store.files.end(upload_id)  # noqa: B023 - used at once
            except (NotFound, OSError):
                return None

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(end, (first, second)))
        assert FileRef(sha, len(data)) in answers
        assert whole(second, sha) == data, attempt


def test_sweep_keeps_what_is_referred_to_or_recent(store: Store) -> None:  # noqa: F811
    kept = upload(store, b"kept", at(0))
    loose = upload(store, b"loose", at(0))
    recent = upload(store, b"recent", at(100))
    asked = upload(store, b"asked again", at(0))
    store.files.refer("problem:p:1", [kept.sha256])
    store.files.refer("problem:p:1", [kept.sha256])  # twice is once
    assert store.files.stat(asked.sha256, at(60)) is not None  # asked for: refreshed
    abandoned = store.files.begin(hashlib.sha256(b"never ends").hexdigest(), 10, at(0))
    assert store.files.sweep(at(50)) == 1
    assert store.files.stat(loose.sha256) is None
    for ref in (kept, recent, asked):
        assert store.files.stat(ref.sha256) == ref.size
    with pytest.raises(NotFound):
        store.files.put(abandoned, 0, b"0123456789")
    store.files.release("problem:p:1")
    assert store.files.sweep(at(50)) == 1  # nothing refers to it any more
    assert store.files.stat(kept.sha256) is None
    assert store.files.sweep(at(200)) == 2
    assert store.files.stat(recent.sha256) is None


def test_an_earlier_use_never_moves_a_later_one_back(store: Store) -> None:  # noqa: F811
    """A file asked for with an earlier time after a later one (a judicator whose clock or
    call is behind) keeps the later use, so the sweep keeps the file until after it."""
    ref = upload(store, b"used twice", at(0))
    assert store.files.stat(ref.sha256, at(100)) == ref.size
    assert store.files.stat(ref.sha256, at(60)) == ref.size  # a slower judicator, later
    assert store.files.sweep(at(80)) == 0
    assert store.files.stat(ref.sha256) == ref.size
    assert store.files.sweep(at(101)) == 1
