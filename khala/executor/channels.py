"""The two channels of an interactive case: named pipes that both sides open by name.

The program's work dir gets two FIFOs (`TO_PROGRAM`, `TO_JURY`) before it is handed to the
sandbox user; the interactor's work dir gets the same two inodes (`Sandbox.place_file`: a
read-only bind under bubblewrap, a hard link without it). Each side's script opens them before
its command runs, so each step is an ordinary step with nothing of the other side's on its
command line or in its file descriptors: warm boxes run both sides, as any step.

The opens are ordered so that neither side can wait for the other forever while the other
waits too: the program opens `TO_JURY` for writing first, the interactor opens it for reading
first; then `TO_PROGRAM`. A side that never comes (its sandbox failed, it was stopped) would
leave the other blocked in `open`: once a side has ended, `release` is called until the other
ends too, each call unblocking the open the other waits in.

The channels carry nothing but the two programs' own bytes; the program may reopen its own
names, which gives it nothing beyond the ends it already holds.
"""

from __future__ import annotations

import os
import shutil
import stat

from khala.sandbox.base import Sandbox

TO_PROGRAM = ".khala-to-program"  # the interactor writes, the program reads
TO_JURY = ".khala-to-jury"  # the program writes, the interactor reads
NAMES = (TO_JURY, TO_PROGRAM)  # the order both sides open them in


def make(program_dir: str) -> None:
    """The two FIFOs in the program's laid-out work dir, before its step runs (a build that
    left something under these names loses it: they are Khala's). Readable and writable by
    every user: the two sides may run as different users, and each work dir is private (0700)
    to its own side."""
    for name in NAMES:
        path = os.path.join(program_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        os.mkfifo(path, 0o600)
        os.chmod(path, 0o666)


def share(sandbox: Sandbox, program_dir: str, jury_dir: str) -> None:
    """The same two FIFOs in the interactor's prepared work dir. Raises OSError."""
    for name in NAMES:
        sandbox.place_file(os.path.join(program_dir, name), os.path.join(jury_dir, name))


def program_script(command: str) -> str:
    """The program's execute.sh: its stdout to the interactor, its stdin from it, then
    `command`. The FIFOs lie beside the script, which a step reaches from its working
    directory as `$0` (docs/sandbox.md: `bash NAME.sh`, named relative to the cwd)."""
    here = '"${0%execute.sh}'
    return f'exec 1>{here}{TO_JURY}" 0<{here}{TO_PROGRAM}" || exit 127\n{command}\n'


def jury_script(command: str) -> str:
    """The interactor's script: its stdin from the program, its stdout to it, then
    `command` (run from the top of its work dir)."""
    return f"exec 0<{TO_JURY} 1>{TO_PROGRAM} || exit 127\n{command}\n"


def release(jury_dir: str) -> None:
    """Unblock a side still waiting in `open` for the other, which has ended: open each FIFO
    both ways without blocking and close it again (a waiting open returns; a reader then
    sees the end of its input, a writer a broken pipe). Harmless once both sides are
    connected: nothing is read or written. Through the interactor's names: the program's
    work dir is the program's to change."""
    for name in NAMES:
        path = os.path.join(jury_dir, name)
        for flags in (os.O_RDONLY, os.O_WRONLY):
            try:
                fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:  # no reader for a write open (ENXIO), or nothing there
                continue
            try:
                if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                    break
            finally:
                os.close(fd)
