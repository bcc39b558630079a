"""What an image's tar may hold (khala/images/tarball.py) and image names (khala/images/model.py):
refused members fail the whole tar, device nodes are dropped, setuid bits cleared, every file
root's, no escape through a symlink on unpack, /bin/sh found through merged-usr links, the mount
points and identity files a sandbox needs made."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from khala.errors import InvalidInput
from khala.images.model import image_text, parse_image
from khala.images.tarball import check_tar, unpack
from tests.images.tars import make_tar, member, minimal

MAX = 1 << 30


def tar_of(tmp_path: Path, *extra: tuple[tarfile.TarInfo, bytes], base: bool = True) -> str:
    return make_tar(str(tmp_path / "image.tar"), minimal(extra) if base else list(extra))


@pytest.mark.parametrize("name", [
    "/etc/passwd", "../outside", "usr/../../outside",
])
def test_absolute_and_dotdot_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput, match="absolute paths and '..' are refused"):
        check_tar(tar_of(tmp_path, member(name, data=b"x")), MAX)


@pytest.mark.parametrize("link", ["/etc/shadow", "../../etc/shadow"])
def test_a_hard_link_out_of_the_tree_is_refused(tmp_path: Path, link: str) -> None:
    with pytest.raises(InvalidInput, match="hard link"):
        check_tar(tar_of(tmp_path, member("bin/x", tarfile.LNKTYPE, link=link)), MAX)


def test_a_write_through_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = tar_of(tmp_path, member("escape", tarfile.SYMTYPE, link=str(outside)),
                  member("escape/planted", data=b"gotcha"))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(InvalidInput, match="refused"):
        unpack(path, str(root), MAX)
    assert not (outside / "planted").exists()


def test_devices_dropped_setuid_cleared_everything_roots(tmp_path: Path) -> None:
    path = tar_of(tmp_path, member("dev", tarfile.DIRTYPE, mode=0o755),
                  member("dev/null", tarfile.CHRTYPE, mode=0o666),
                  member("dev/sda", tarfile.BLKTYPE, mode=0o660),
                  member("fifo", tarfile.FIFOTYPE),
                  member("bin/su", data=b"x", mode=0o4755, uid=1000),
                  member("etc", tarfile.DIRTYPE, mode=0o755),
                  member("etc/resolv.conf", tarfile.SYMTYPE,
                         link="../run/systemd/resolve/stub-resolv.conf"),
                  member("shared", tarfile.DIRTYPE, mode=0o777),
                  member("abs-link", tarfile.SYMTYPE, link="/usr/bin/nothing"))
    summary = check_tar(path, MAX)
    assert (summary.members, summary.dropped) == (8, 3)
    root = tmp_path / "root"
    root.mkdir()
    unpack(path, str(root), MAX)
    assert not any(os.path.lexists(root / n) for n in ("dev/null", "dev/sda", "fifo"))
    su = os.lstat(root / "bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o755 and (su.st_uid, su.st_gid) == (0, 0)
    assert stat.S_IMODE(os.lstat(root / "shared").st_mode) & 0o022 == 0
    assert os.readlink(root / "abs-link") == "/usr/bin/nothing"  # resolved inside the sandbox
    # mount points and the identity files a sandbox binds over, made; a symlinked one replaced
    for name in ("proc", "dev", "tmp", "work", "etc"):
        assert (root / name).is_dir() and not (root / name).is_symlink()
    for name in ("passwd", "group", "hosts", "hostname", "resolv.conf"):
        target = root / "etc" / name
        assert target.is_file() and not target.is_symlink()
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o755


def test_bin_sh_is_found_through_merged_usr_links(tmp_path: Path) -> None:
    merged = [member("usr", tarfile.DIRTYPE, mode=0o755),
              member("usr/bin", tarfile.DIRTYPE, mode=0o755),
              member("usr/bin/dash", data=b"x", mode=0o755),
              member("usr/bin/sh", tarfile.SYMTYPE, link="dash"),
              member("bin", tarfile.SYMTYPE, link="usr/bin")]
    assert check_tar(tar_of(tmp_path, *merged, base=False), MAX).members == 5
    root = tmp_path / "root"
    root.mkdir()
    unpack(tar_of(tmp_path, *merged, base=False), str(root), MAX)
    absolute = [m for m in merged[:3]] + [member("usr/bin/sh", tarfile.SYMTYPE,
                                                 link="/usr/bin/dash"),
                                          member("bin", tarfile.SYMTYPE, link="/usr/bin")]
    assert check_tar(tar_of(tmp_path, *absolute, base=False), MAX).members == 5


@pytest.mark.parametrize("members", [
    [member("etc", tarfile.DIRTYPE)],
    [member("bin", tarfile.SYMTYPE, link="usr/bin"), member("usr", tarfile.DIRTYPE)],
    [member("bin", tarfile.DIRTYPE), member("bin/sh", tarfile.SYMTYPE, link="sh")],  # a loop
])
def test_an_image_without_a_shell_is_refused(tmp_path: Path,
                                             members: list[tuple[tarfile.TarInfo, bytes]]
                                             ) -> None:
    with pytest.raises(InvalidInput, match="/bin/sh"):
        check_tar(tar_of(tmp_path, *members, base=False), MAX)


def test_not_a_tar_and_too_large_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is no tar" * 100)
    with pytest.raises(InvalidInput, match="not a readable tar"):
        check_tar(str(junk), MAX)
    big = tar_of(tmp_path, member("big", data=b"x" * 5000))
    with pytest.raises(InvalidInput, match="more than 4096 bytes"):
        check_tar(big, 4096)


def test_compressed_tars_and_open_files_are_read(tmp_path: Path) -> None:
    plain = tar_of(tmp_path)
    packed = str(tmp_path / "image.tar.xz")
    with tarfile.open(plain) as src, tarfile.open(packed, "w:xz") as dst:
        for info in src:
            dst.addfile(info, src.extractfile(info) if info.isfile() else None)
    assert check_tar(packed, MAX).members == 2
    with open(packed, "rb") as fh:
        fh.read(10)  # read from its start whatever the position
        assert check_tar(fh, MAX).members == 2


@pytest.mark.parametrize(("text", "name", "version"), [
    ("gcc", "gcc", 0), ("debian-12.gcc_x:3", "debian-12.gcc_x", 3)])
def test_image_names(text: str, name: str, version: int) -> None:
    ref = parse_image(text)
    assert (ref.name, ref.version) == (name, version) and image_text(ref) == text


@pytest.mark.parametrize("text", ["", "Upper", "-x", "a:0", "a:-1", "a:b", "a:1:2", "x" * 65,
                                  "a/b"])
def test_bad_image_names_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_image(text)
