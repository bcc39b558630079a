"""The sandbox's /etc: generated users and hosts plus copies of an allow-list of host entries.

Written once when the bwrap sandbox opens (a directory `khala-etc-<pid>-…` in the temporary
directory) and bound read-only as one mount: a single bind is much cheaper per run than one bind
per file. Copies left by executors that died without closing are removed at the next start.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from khala.sandbox.fstree import remove_tree

ETC_PREFIX = "khala-etc-"
# /etc entries copied when present: what loaders and runtimes need, no secrets.
ETC_ALLOW = (
    "alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
    "protocols", "services", "mime.types", "ssl", "ca-certificates", "os-release",
    "debian_version", "python3", "python3.11", "perl", "java-17-openjdk", "java-21-openjdk",
    "gcc", "bash.bashrc", "inputrc", "profile",
)
#: The files `write_etc` generates (the rest is copied): in an image, bound over its own.
GENERATED_ETC = ("passwd", "group", "hosts", "hostname", "resolv.conf")
MAX_COPIED = 100_000  # entries copied at most (bounds the walk of a strange host /etc)


def remove_stale_etc(tmp: str) -> None:
    """Remove /etc copies left by executors that died without close() (named by their pid)."""
    for name in os.listdir(tmp):
        pid = name.removeprefix(ETC_PREFIX).split("-", 1)[0]
        if not name.startswith(ETC_PREFIX) or not pid.isdigit():
            continue
        path = os.path.join(tmp, name)
        try:
            if os.lstat(path).st_uid != os.geteuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            remove_tree(path)
        except OSError:
            continue


def make_etc(uid: int, gid: int, home: str, nameserver: str = "") -> str:
    """Create and fill a fresh /etc directory for the sandbox; returns its path. `nameserver`:
    the resolver of steps with the network (none without)."""
    tmp = tempfile.gettempdir()
    remove_stale_etc(tmp)
    directory = tempfile.mkdtemp(prefix=f"{ETC_PREFIX}{os.getpid()}-", dir=tmp)
    write_etc(directory, uid, gid, home, nameserver=nameserver)
    return directory


def write_etc(directory: str, uid: int, gid: int, home: str, host_etc: str = "/etc",
              nameserver: str = "") -> None:
    """Fill `directory`: generated users and hosts, plus copies of the allow-listed host entries
    (symlinks kept, anything not readable by others skipped)."""
    files = {
        "passwd": "root:x:0:0:root:/:/usr/sbin/nologin\n"
        f"sandbox:x:{uid}:{gid}:sandbox:{home}:/bin/sh\n",
        "group": f"root:x:0:\nsandbox:x:{gid}:\n",
        "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
        "hostname": "khala\n",
        "resolv.conf": f"nameserver {nameserver}\n" if nameserver else "",
    }
    pending = [(os.path.join(host_etc, n), os.path.join(directory, n)) for n in ETC_ALLOW]
    copied = 0
    while pending and copied < MAX_COPIED:
        src, dst = pending.pop()
        pending += copy_public(src, dst)
        copied += 1
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as fh:
            fh.write(text)
        os.chmod(os.path.join(directory, name), 0o644)
    os.chmod(directory, 0o755)


def copy_public(src: str, dst: str) -> list[tuple[str, str]]:
    """Copy `src` to `dst` if others may read it: a symlink as a link, a file's content, a
    directory as an empty one. Returns a directory's entries still to copy."""
    try:
        st = os.lstat(src)
    except OSError:
        return []
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IROTH and st.st_mode & stat.S_IXOTH:
        os.mkdir(dst, 0o755)
        return [(os.path.join(src, n), os.path.join(dst, n)) for n in os.listdir(src)]
    elif stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IROTH:
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
    return []
