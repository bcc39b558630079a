"""The compile cache's files (khala/executor/compile_cache.py) on a real file system: only
declared plain outputs are kept, copies are checked on the way out, changed entries are dropped,
the bound holds, and entries survive a restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from khala.executor.compile_cache import CompileCache, OutputError, source_files
from khala.judging.cache import cache_key


def build_dir(tmp: Path, files: dict[str, bytes]) -> str:
    root = tmp / "build"
    root.mkdir(exist_ok=True)
    for name, content in files.items():
        (root / name).write_bytes(content)
        (root / name).chmod(0o755)
    return str(root)


def fresh(tmp: Path, name: str) -> str:
    path = tmp / name
    path.mkdir()
    return str(path)


def test_store_then_fetch_gives_the_same_files_as_copies(tmp_path: Path) -> None:
    cache = CompileCache(str(tmp_path / "cache"), 1 << 20)
    build = build_dir(tmp_path, {"main": b"\x7fELF binary", "main.o": b"obj", "main.c": b"src"})
    first = fresh(tmp_path, "a")
    cache.store("k1", build, ("main",), first)
    assert os.listdir(first) == ["main"] and os.access(os.path.join(first, "main"), os.X_OK)
    second = fresh(tmp_path, "b")
    assert cache.fetch("k1", second)
    assert Path(second, "main").read_bytes() == b"\x7fELF binary"
    Path(second, "main").write_bytes(b"rewritten by the program")  # a copy: the entry is intact
    third = fresh(tmp_path, "c")
    assert cache.fetch("k1", third) and Path(third, "main").read_bytes() == b"\x7fELF binary"
    entry = tmp_path / "cache" / "k1"
    assert (entry / "main").stat().st_mode & 0o777 == 0o444
    assert entry.stat().st_mode & 0o777 == 0o555
    assert not cache.fetch("other", fresh(tmp_path, "d"))


def test_glob_outputs(tmp_path: Path) -> None:
    cache = CompileCache(str(tmp_path / "cache"), 1 << 20)
    build = build_dir(tmp_path, {"Main.class": b"a", "Main$1.class": b"b", "Main.java": b"s"})
    dest = fresh(tmp_path, "out")
    cache.store("k", build, ("*.class",), dest)
    assert sorted(os.listdir(dest)) == ["Main$1.class", "Main.class"]


@pytest.mark.parametrize("kind", ["symlink", "fifo", "missing", "directory"])
def test_outputs_that_are_no_plain_file_are_refused(tmp_path: Path, kind: str) -> None:
    cache = CompileCache(str(tmp_path / "cache"), 1 << 20)
    build = build_dir(tmp_path, {"main.c": b"src"})
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"not for the cache")
    if kind == "symlink":
        os.symlink(secret, os.path.join(build, "main"))
    elif kind == "fifo":
        os.mkfifo(os.path.join(build, "main"))
    elif kind == "directory":
        os.mkdir(os.path.join(build, "main"))
    with pytest.raises(OutputError):
        cache.store("k", build, ("main",), fresh(tmp_path, "out"))
    assert not cache.fetch("k", fresh(tmp_path, "again"))
    assert [n for n in os.listdir(tmp_path / "cache")] == []  # nothing half-written is left


@pytest.mark.parametrize("tamper", ["content", "extra file", "symlink"])
def test_a_changed_entry_is_dropped(tmp_path: Path, tamper: str) -> None:
    cache = CompileCache(str(tmp_path / "cache"), 1 << 20)
    cache.store("k", build_dir(tmp_path, {"main": b"good"}), ("main",), fresh(tmp_path, "a"))
    entry = tmp_path / "cache" / "k"
    entry.chmod(0o755)
    target = entry / "main"
    if tamper == "content":
        target.chmod(0o644)
        target.write_bytes(b"evil")
    elif tamper == "extra file":
        (entry / "evil.so").write_bytes(b"x")
    else:
        target.unlink()
        os.symlink("/bin/sh", target)
    dest = fresh(tmp_path, "b")
    assert not cache.fetch("k", dest)
    assert os.listdir(dest) == [] and not entry.exists()


def test_the_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = CompileCache(str(tmp_path / "cache"), 250)
    for key in ("k1", "k2"):
        build = build_dir(tmp_path, {"main": key.encode() * 50})  # 100 bytes
        cache.store(key, build, ("main",), fresh(tmp_path, key))
    assert cache.fetch("k1", fresh(tmp_path, "use-k1"))
    cache.store("k3", build_dir(tmp_path, {"main": b"k3" * 50}), ("main",), fresh(tmp_path, "k3"))
    assert sorted(os.listdir(tmp_path / "cache")) == ["k1", "k3"]
    big = build_dir(tmp_path, {"main": b"x" * 300})
    dest = fresh(tmp_path, "big")
    cache.store("k4", big, ("main",), dest)  # too large to keep, still handed out
    assert Path(dest, "main").stat().st_size == 300
    assert sorted(os.listdir(tmp_path / "cache")) == ["k1", "k3"]


def test_entries_survive_a_restart_and_off_keeps_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    CompileCache(root, 1 << 20).store("k", build_dir(tmp_path, {"main": b"bin"}), ("main",),
                                      fresh(tmp_path, "a"))
    assert CompileCache(root, 1 << 20).fetch("k", fresh(tmp_path, "b"))
    off = CompileCache(str(tmp_path / "off"), 0)
    dest = fresh(tmp_path, "c")
    off.store("k", build_dir(tmp_path, {"main": b"bin"}), ("main",), dest)
    assert os.listdir(dest) == ["main"] and not off.fetch("k", fresh(tmp_path, "d"))
    assert not (tmp_path / "off").exists()


def test_source_key_follows_the_tree(tmp_path: Path) -> None:
    def key(files: dict[str, bytes]) -> str:
        root = tmp_path / f"src{len(list(tmp_path.iterdir()))}"
        root.mkdir()
        for name, content in files.items():
            (root / name).write_bytes(content)
        return cache_key(source_files(str(root)), "c", "gcc", ["main"], "12")

    assert key({"main.c": b"a"}) == key({"main.c": b"a"})
    assert key({"main.c": b"a"}) != key({"main.c": b"b"})
    assert key({"main.c": b"a"}) != key({"main.c": b"a", "x.h": b""})

