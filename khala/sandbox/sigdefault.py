"""Every signal back to its default disposition, in the child that becomes a sandbox (bwrap),
or the step itself when unsandboxed (plain.py), so a step's signals never depend on how the
executor was started.

An ignored signal stays ignored across fork and exec. An executor started under `nohup`
ignores SIGHUP, and one started by a program that uses glibc's `posix_spawn` (GNU make does)
ignores signals 32 and 33, the C library's own, which no glibc call can reset: every step
would inherit them. So the sandbox's child sets each signal's disposition to the default
with the raw `rt_sigaction` system call before it execs bubblewrap (a warm box's init then
inherits the defaults, and starts its stems with them).
"""

from __future__ import annotations

import ctypes
import platform
import signal
from collections.abc import Callable

#: rt_sigaction's number on the architectures Khala runs on (no-op elsewhere).
RT_SIGACTION = {"x86_64": 13, "aarch64": 134}
KERNEL_SIGSET_BYTES = 8  # the kernel's sigset_t: 64 signals
LAST_SIGNAL = 64
UNCHANGEABLE = (signal.SIGKILL, signal.SIGSTOP)


def defaulter() -> Callable[[], None]:
    """A function that sets every signal to its default disposition in the calling process
    (for a preexec function: everything it needs is made here, before the fork)."""
    number = RT_SIGACTION.get(platform.machine())
    if number is None:
        return lambda: None
    syscall = ctypes.CDLL(None, use_errno=True).syscall
    # A zeroed struct kernel_sigaction on every layout: SIG_DFL, no flags, an empty mask.
    default = ctypes.create_string_buffer(32)
    args = [(ctypes.c_long(number), ctypes.c_long(sig)) for sig in range(1, LAST_SIGNAL + 1)
            if sig not in UNCHANGEABLE]
    size = ctypes.c_long(KERNEL_SIGSET_BYTES)

    def reset() -> None:
        for call, sig in args:
            syscall(call, sig, default, None, size)

    return reset
