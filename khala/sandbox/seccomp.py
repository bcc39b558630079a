"""The seccomp filter of sandboxed steps: kernel surfaces a judged program never needs.

Built once with libseccomp (through `pyseccomp`, a ctypes binding) as a BPF program, and handed
to bubblewrap with `--seccomp FD` at every run; bubblewrap installs it right before it executes
the step's command, so the filter covers the step and every process it starts, but not
bubblewrap's own setup. A denied call fails with EPERM; everything else is allowed.
"""

from __future__ import annotations

import errno
import os
import tempfile

from khala.errors import SandboxUnavailable

# name → why a judged program never needs it (documented in docs/sandbox.md)
DENIED = {
    # kernel keyrings: every step runs as uid 65534, so the user keyrings would be shared
    "keyctl": "keyrings", "add_key": "keyrings", "request_key": "keyrings",
    # large kernel attack surfaces with a history of exploits
    "io_uring_setup": "io_uring", "io_uring_enter": "io_uring", "io_uring_register": "io_uring",
    "perf_event_open": "perf", "userfaultfd": "userfaultfd", "bpf": "bpf",
    # the step must not reach the unfiltered bubblewrap reaper (pid 1 of its namespace)
    "ptrace": "ptrace", "process_vm_readv": "ptrace", "process_vm_writev": "ptrace",
    # namespaces and mounts (already refused without capabilities; denied outright here)
    "unshare": "namespaces", "setns": "namespaces",
    "mount": "mounts", "umount2": "mounts", "pivot_root": "mounts", "move_mount": "mounts",
    "open_tree": "mounts", "fsopen": "mounts", "fsconfig": "mounts", "fsmount": "mounts",
    "fspick": "mounts", "mount_setattr": "mounts",
    # the machine itself
    "kexec_load": "machine", "kexec_file_load": "machine", "reboot": "machine",
    "init_module": "machine", "finit_module": "machine", "delete_module": "machine",
    "swapon": "machine", "swapoff": "machine", "acct": "machine", "quotactl": "machine",
}
# Other ABIs the native one can call into (a 32-bit program on x86-64): filtered alike.
SECONDARY_ARCHES = {"X86_64": ("X86", "X32"), "AARCH64": ("ARM",)}


def build_filter() -> bytes:
    """The BPF program denying DENIED (EPERM) on the native ABI and its secondary ones."""
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError, OSError) as exc:
        raise SandboxUnavailable(f"libseccomp is not usable ({exc}); apt-get install "
                                 "libseccomp2") from exc
    flt = sc.SyscallFilter(sc.ALLOW)
    native = sc.system_arch()
    names = [n for n in dir(sc.Arch) if n.isupper() and getattr(sc.Arch, n) == native]
    for name in SECONDARY_ARCHES.get(names[0] if names else "", ()):
        flt.add_arch(getattr(sc.Arch, name))
    for syscall in DENIED:
        try:
            flt.add_rule(sc.ERRNO(errno.EPERM), syscall)
        except (OSError, ValueError):  # not a syscall of this kernel's ABIs
            continue
    with tempfile.TemporaryFile() as fh:
        flt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


def filter_fd(program: bytes) -> int:
    """A readable fd holding `program`, for `bwrap --seccomp FD` (close it after the start)."""
    fd = os.memfd_create("khala-seccomp", 0)  # inheritable only through Popen's pass_fds
    view = memoryview(program)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
