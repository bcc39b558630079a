"""zipcheck: header checks, safe extraction, one-file zips."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest

from khala.errors import InvalidInput
from khala.zipcheck import check_zip, entry_parts, extract_zip, make_zip

BIG = 1 << 20


def build(
    entries: list[tuple[str, bytes, int | None]], compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    """A zip of (name, content, unix mode or None) entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def test_empty_data_is_accepted_even_when_no_zip_is() -> None:
    check_zip(b"", 0, 0)  # raises nothing
    with pytest.raises(InvalidInput, match="entries"):
        check_zip(build([("a", b"", None)]), 0, 0)


def test_valid_zip_is_accepted_up_to_its_exact_size_and_count() -> None:
    content = b"int main() {}"
    data = build([("main.cpp", content, None), ("dir/", b"", stat.S_IFDIR | 0o755)])
    check_zip(data, len(content), 2)  # exactly at both limits: raises nothing
    with pytest.raises(InvalidInput, match="unpacks to 13 bytes"):
        check_zip(data, len(content) - 1, 2)
    with pytest.raises(InvalidInput, match="has 2 entries"):
        check_zip(data, len(content), 1)


@pytest.mark.parametrize("data", [b"not a zip", b"PK\x03\x04garbage", b"\x00" * 100])
def test_garbage_is_rejected(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="zip"):
        check_zip(data, BIG, 10)


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../evil",
        "a/../../evil",
        "a/..",
        "C:/windows",
        "c:evil",
        "a\\..\\evil",
        "a\x00b",
    ],
)
def test_escaping_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidInput):
        entry_parts(name)


def test_escaping_entry_rejected_in_archive() -> None:
    with pytest.raises(InvalidInput, match="'..'"):
        check_zip(build([("ok.txt", b"x", None), ("../evil", b"x", None)]), BIG, 10)
    with pytest.raises(InvalidInput, match="absolute"):
        check_zip(build([("/abs", b"x", None)]), BIG, 10)


def test_entry_parts_drops_dots() -> None:
    assert entry_parts("./a//b/./c") == ["a", "b", "c"]


def test_symlink_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="symlink"):
        check_zip(build([("link", b"/etc/passwd", stat.S_IFLNK | 0o777)]), BIG, 10)


@pytest.mark.parametrize("kind", [stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
def test_special_files_are_rejected(kind: int) -> None:
    with pytest.raises(InvalidInput, match="special"):
        check_zip(build([("dev", b"", kind | 0o644)]), BIG, 10)


def test_too_many_files() -> None:
    data = build([(f"f{i}", b"x", None) for i in range(5)])
    check_zip(data, BIG, 5)
    with pytest.raises(InvalidInput, match="entries"):
        check_zip(data, BIG, 4)


def test_too_many_bytes_in_headers() -> None:
    data = build([("a", b"x" * 600, None), ("b", b"y" * 600, None)])
    check_zip(data, 1200, 10)
    with pytest.raises(InvalidInput, match="1200 bytes"):
        check_zip(data, 1199, 10)


def test_encrypted_flag_is_rejected() -> None:
    data = bytearray(build([("a", b"x", None)], zipfile.ZIP_STORED))
    # flag bits live at offset 6 of the local header and offset 8 of the central header
    data[6] |= 1
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1
    with pytest.raises(InvalidInput, match="encrypted"):
        check_zip(bytes(data), BIG, 10)


def test_extract_writes_files_and_dirs(tmp_path: object) -> None:
    dest = str(tmp_path)
    data = build(
        [
            ("src/main.cpp", b"int main() {}", None),
            ("empty/", b"", stat.S_IFDIR | 0o755),
            ("run.sh", b"#!/bin/sh\n", stat.S_IFREG | 0o755),
            ("./dot.txt", b"dot", None),
        ]
    )
    extract_zip(data, dest, BIG, 10)
    with open(os.path.join(dest, "src", "main.cpp"), "rb") as fh:
        assert fh.read() == b"int main() {}"
    assert os.path.isdir(os.path.join(dest, "empty"))
    assert os.stat(os.path.join(dest, "run.sh")).st_mode & 0o111
    assert not os.stat(os.path.join(dest, "src", "main.cpp")).st_mode & 0o111
    with open(os.path.join(dest, "dot.txt"), "rb") as fh:
        assert fh.read() == b"dot"


def test_extract_rejects_unsafe_before_writing(tmp_path: object) -> None:
    dest = str(tmp_path)
    data = build([("first.txt", b"x", None), ("../evil", b"x", None)])
    with pytest.raises(InvalidInput):
        extract_zip(data, dest, BIG, 10)
    assert os.listdir(dest) == []


def test_extract_does_not_follow_existing_symlink(tmp_path: object) -> None:
    base = str(tmp_path)
    dest = os.path.join(base, "dest")
    outside = os.path.join(base, "outside")
    os.mkdir(dest)
    os.mkdir(outside)
    os.symlink(outside, os.path.join(dest, "sub"))
    os.symlink(os.path.join(outside, "target"), os.path.join(dest, "file"))
    with pytest.raises(InvalidInput):
        extract_zip(build([("sub/x", b"x", None)]), dest, BIG, 10)
    with pytest.raises(InvalidInput):
        extract_zip(build([("file", b"x", None)]), dest, BIG, 10)
    assert os.listdir(outside) == []


def test_extract_enforces_real_size_when_header_lies(tmp_path: object) -> None:
    payload = b"\x00" * 100_000
    data = bytearray(build([("bomb", payload, None)]))
    # Rewrite the declared uncompressed size (local offset 22, central offset 24) to 10 bytes.
    data[22:26] = (10).to_bytes(4, "little")
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    check_zip(bytes(data), 1000, 10)  # the headers claim 10 bytes
    with pytest.raises(InvalidInput):
        extract_zip(bytes(data), str(tmp_path), 1000, 10)
    path = os.path.join(str(tmp_path), "bomb")
    assert not os.path.exists(path) or os.path.getsize(path) <= 1000


def test_extract_file_over_directory_conflict(tmp_path: object) -> None:
    data = build([("a/", b"", stat.S_IFDIR | 0o755), ("a", b"x", None)])
    with pytest.raises(InvalidInput):
        extract_zip(data, str(tmp_path), BIG, 10)


def test_make_zip_round_trip(tmp_path: object) -> None:
    data = make_zip("main.cpp", "int main() { return 0; } // ünïcode")
    check_zip(data, BIG, 1)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["main.cpp"]
        assert archive.read("main.cpp").decode() == "int main() { return 0; } // ünïcode"
    extract_zip(data, str(tmp_path), BIG, 1)
    assert os.listdir(str(tmp_path)) == ["main.cpp"]


def test_make_zip_is_deterministic() -> None:
    assert make_zip("a.txt", "same") == make_zip("a.txt", "same")


@pytest.mark.parametrize("name", ["", "/abs", "../up", "a/../../b", "dir/", ".", "a\\b"])
def test_make_zip_rejects_bad_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        make_zip(name, "x")


def test_writer_stops_at_the_byte_budget(tmp_path: object) -> None:
    """The running count while writing, independent of what the headers claim."""
    from khala.zipcheck import _write_file

    data = build([("big", b"z" * 200_000, None)])
    root = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("big")
            with pytest.raises(InvalidInput, match="more bytes than the limit"):
                _write_file(archive, info, root, "big", 100_000)
            assert _write_file(archive, info, root, "big2", 200_000) == 200_000
    finally:
        os.close(root)
    assert os.path.getsize(os.path.join(str(tmp_path), "big")) <= 100_000
