"""An executor's unpacked images (khala/executor/images.py) on disk, their tars fetched through
the file cache from the in-memory StubJudicator: unpacked once however many slots ask at once,
atomically (a refused tar leaves nothing), kept across a restart (an incomplete one removed),
bounded with pinned images never evicted, one executor per directory."""

from __future__ import annotations

import os
import tarfile
import threading
from pathlib import Path

import pytest

from khala.errors import ConfigError, InvalidInput
from khala.executor.filecache import FileCache
from khala.executor.images import SIZE_SUFFIX, ImageRoots
from khala.files.refs import CHUNK
from khala.files.transfer import send_bytes
from khala.model import ImageRef
from tests.executor.test_filecache import Source
from tests.images.tars import make_tar, member, minimal


def image(source: Source, tmp: Path, name: str, size: int = 100) -> ImageRef:
    """A tar with /bin/sh and a file of `size` bytes, stored in the stub."""
    path = make_tar(str(tmp / f"{name}.tar"), minimal([member(f"{name}.txt", data=b"x" * size)]))
    ref = send_bytes(source.stub, Path(path).read_bytes())
    return ImageRef(name=name, version=1, resolved=1, sha256=ref.sha256, size=ref.size)


def roots_at(tmp: Path, source: Source, capacity: int = 1 << 20) -> ImageRoots:
    files = FileCache(str(tmp / "files"), 64 * CHUNK, source.fetch)
    return ImageRoots(str(tmp / "images"), capacity, files)


@pytest.fixture
def source() -> Source:
    return Source()


def unpacked(tmp: Path) -> list[str]:
    return sorted(n for n in os.listdir(tmp / "images") if len(n) == 64)


def test_unpacked_once_for_slots_asking_at_once(tmp_path: Path, source: Source) -> None:
    ref = image(source, tmp_path, "a")
    roots = roots_at(tmp_path, source)
    source.gate = threading.Event()
    found: list[str] = []

    def slot() -> None:
        with roots.holding([ref]) as paths:
            found.append(paths[ref.sha256])
            assert Path(paths[ref.sha256], "a.txt").read_bytes() == b"x" * 100

    threads = [threading.Thread(target=slot) for _ in range(6)]
    for t in threads:
        t.start()
    source.gate.set()
    for t in threads:
        t.join(30)
    assert len(found) == 6 and len(set(found)) == 1
    assert source.fetched == [ref.sha256] and roots.counts.unpacks == 1
    assert roots.counts.hits == 5
    assert oct(os.stat(tmp_path / "images").st_mode & 0o777) == "0o711"
    assert os.stat(found[0]).st_uid == 0 or os.geteuid() != 0
    assert os.listdir(tmp_path / "images" / "tmp") == []


def test_a_refused_tar_leaves_nothing(tmp_path: Path, source: Source) -> None:
    bad = make_tar(str(tmp_path / "bad.tar"), minimal([member("../x", data=b"x")]))
    stored = send_bytes(source.stub, Path(bad).read_bytes())
    ref = ImageRef(name="bad", sha256=stored.sha256, size=stored.size)
    roots = roots_at(tmp_path, source)
    with pytest.raises(InvalidInput, match="refused"), roots.holding([ref]):
        pass
    assert unpacked(tmp_path) == [] and os.listdir(tmp_path / "images" / "tmp") == []
    assert roots.size == 0


def test_kept_across_a_restart_and_an_incomplete_one_removed(tmp_path: Path,
                                                             source: Source) -> None:
    a, b = image(source, tmp_path, "a"), image(source, tmp_path, "b")
    roots = roots_at(tmp_path, source)
    with roots.holding([a, b]):
        pass
    roots.close()
    roots.files.close()
    os.unlink(tmp_path / "images" / (b.sha256 + SIZE_SUFFIX))  # as if killed mid-rename
    (tmp_path / "images" / "tmp" / "leftover").mkdir()
    again = roots_at(tmp_path, source)
    assert unpacked(tmp_path) == [a.sha256]
    assert os.listdir(tmp_path / "images" / "tmp") == []
    source.fetched.clear()
    with again.holding([a, b]) as paths:
        assert Path(paths[b.sha256], "b.txt").exists()
    assert source.fetched == []  # b's tar was still in the file cache
    assert again.counts.hits == 1 and again.counts.unpacks == 1  # a was on disk; b unpacked


def test_bounded_least_recently_used_first_pinned_never(tmp_path: Path, source: Source) -> None:
    a, b, c = (image(source, tmp_path, n, 4000) for n in "abc")
    roots = roots_at(tmp_path, source, capacity=9000)  # two images fit
    with roots.holding([a]):
        pass
    with roots.holding([b]), roots.holding([c]):  # b pinned while c comes: a goes
        assert unpacked(tmp_path) == sorted([b.sha256, c.sha256])
    with roots.holding([b]), roots.holding([a]):  # a again: c (least recent, unpinned) goes
        assert unpacked(tmp_path) == sorted([a.sha256, b.sha256])
    assert roots.counts.evictions == 2 and roots.size == 2 * (4000 + len(b"#!not really\n"))
    small = ImageRoots(str(tmp_path / "small"), 1000, roots.files)
    with pytest.raises(InvalidInput, match="more than 1000 bytes"), small.holding([a]):
        pass


def test_one_executor_per_directory(tmp_path: Path, source: Source) -> None:
    roots_at(tmp_path, source)
    other = FileCache(str(tmp_path / "files2"), CHUNK, source.fetch)
    with pytest.raises(ConfigError, match="in use by another executor"):
        ImageRoots(str(tmp_path / "images"), 1 << 20, other)


def test_tar_members_are_roots_whatever_the_tar_says(tmp_path: Path, source: Source) -> None:
    path = make_tar(str(tmp_path / "owned.tar"),
                    minimal([member("mine", data=b"x", uid=65534, mode=0o4777)]))
    with tarfile.open(path) as tar:
        assert tar.getmember("mine").uid == 65534
    stored = send_bytes(source.stub, Path(path).read_bytes())
    ref = ImageRef(name="owned", sha256=stored.sha256, size=stored.size)
    with roots_at(tmp_path, source).holding([ref]) as paths:
        st = os.lstat(Path(paths[ref.sha256], "mine"))
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 0)
    assert st.st_mode & 0o7777 == 0o755
