"""Figure: recompiling a Go and a Rust hello world in the judge image (images/judge.toml, built
by `make images`), a compile step as an executor runs it — the image's preset command in a
fresh bwrap with the image as its read-only `/`, Go reading the image's warm build cache —
against the same compiler outside the sandbox (chroot into the same unpacked image, as root, its
build cache writable and warm), the two interleaved. Each run changes the source (a comment), so
both really compile the program; only what a toolchain caches across programs is warm."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time

from benchmarks.common import REPO, Row, emit, median, ms
from khala.images.recipe import read_image_presets
from khala.images.tarball import unpack
from khala.sandbox import RunSpec, Sandbox, open_sandbox
from khala.sandbox.base import Limits

JUDGE_TAR = os.environ.get("KHALA_JUDGE_IMAGE") or str(REPO / "images" / "out" / "judge.tar")
HELLO = {
    "go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n// run {n}\n',
    "rust": 'fn main() { println!("hello"); }\n// run {n}\n',
}
WARM_GO = "GOCACHE=/opt/khala/go-cache"  # the judge recipe's Go preset reads the image's cache
LIMITS = Limits(wall_time=300, memory=2 << 30, pids=256, disk=1 << 30)
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": "/tmp"}


def in_sandbox(box: Sandbox, root: str, workdir: str, command: str) -> float:
    started = time.perf_counter()
    outcome = box.run(RunSpec(argv=["/bin/sh", "-c", command], workdir=workdir, limits=LIMITS,
                              root=root), threading.Event())
    took = time.perf_counter() - started
    if outcome.report.reason != "ok":
        raise RuntimeError(f"the sandboxed compile failed: {outcome.report} "
                           f"{outcome.stderr[-2000:]!r}")
    return took


def outside(root: str, inside: str, command: str) -> float:
    """Seconds of `command` run as root in `inside` of the image by chroot, with the host's /dev
    and a /proc mounted in a mount namespace of its own (a compiler wants /dev/null): no user,
    pid or network namespace, no seccomp, no cgroup, no limits."""
    script = (f"mount --bind /dev {shlex.quote(root)}/dev && "
              f"mount -t proc proc {shlex.quote(root)}/proc && "
              f"exec {CHROOT} {shlex.quote(root)} /bin/sh -c "
              + shlex.quote(f"cd {inside} && {command}"))
    started = time.perf_counter()
    subprocess.run([UNSHARE, "--mount", "--propagation", "private", "/bin/sh", "-c", script],
                   env={**ENV, "HOME": inside}, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - started


def measure(box: Sandbox, root: str, language: str, runs: int, command: str = ""
            ) -> tuple[list[float], list[float]]:
    """(seconds in the sandbox, seconds outside), `runs` of each, interleaved, after one of
    each to warm both; `command` in the sandbox instead of the preset's."""
    preset = read_image_presets(root)[language].preset
    base = tempfile.mkdtemp(prefix="khala-bench-recompile-", dir="/tmp")
    os.chmod(base, 0o711)
    workdir = os.path.join(base, "work")
    os.mkdir(workdir)
    inside = f"/tmp/khala-bench-{language}"
    host_side = os.path.join(root, inside.lstrip("/"))
    os.makedirs(host_side, exist_ok=True)
    box.open_workdir(workdir, LIMITS.disk)
    box.prepare_workdir(workdir)
    boxed: list[float] = []
    plain: list[float] = []
    try:
        for n in range(runs + 1):
            source = HELLO[language].replace("{n}", str(n))
            for where in (workdir, host_side):
                with open(os.path.join(where, preset.source), "w") as fh:
                    fh.write(source)
                os.chmod(os.path.join(where, preset.source), 0o644)
            took_boxed = in_sandbox(box, root, workdir, command or preset.compile)
            took_plain = outside(root, inside, preset.compile)
            if n:  # the first pair warms both
                boxed.append(took_boxed)
                plain.append(took_plain)
    finally:
        box.close_workdir(workdir)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(host_side, ignore_errors=True)
    return boxed, plain


def figure_recompile(args: object) -> None:
    runs = 5 if getattr(args, "quick", False) else 15
    if not os.path.isfile(JUDGE_TAR):
        emit(Row("recompile of a Go / Rust hello world in the judge image", "not measured",
                 f"no judge image at {JUDGE_TAR}: make images", None, "≤ 2×", None))
        return
    base = tempfile.mkdtemp(prefix="khala-bench-image-", dir="/tmp")
    os.chmod(base, 0o711)
    root = os.path.join(base, "root")
    os.mkdir(root)
    box = open_sandbox("bwrap", warm=0)
    try:
        started = time.monotonic()
        size = unpack(JUDGE_TAR, root, 1 << 40)
        print(f"  judge image unpacked: {size / 1e9:.2f} GB in {time.monotonic() - started:.0f} s",
              flush=True)
        for language in ("go", "rust"):
            boxed, plain = measure(box, root, language, runs)
            ratio = median(boxed) / median(plain)
            emit(Row(f"recompile of a {language.capitalize()} hello world in the judge image "
                     f"(warm cache), median of {runs}", ms(median(boxed)),
                     f"the same compiler outside the sandbox, warm {ms(median(plain))}", ratio,
                     "≤ 2×", ratio <= 2.0))
        cold_go(box, root, runs)
    finally:
        box.close()
        shutil.rmtree(base, ignore_errors=True)


def cold_go(box: Sandbox, root: str, runs: int) -> None:
    """What the image's warm Go cache saves: the same compile in the sandbox with an empty
    build cache of its own in the work area (the host preset's way) instead."""
    compile_go = read_image_presets(root)["go"].preset.compile
    if WARM_GO not in compile_go:
        return
    fresh = "rm -rf .go/cache && mkdir -p .go/cache && " + compile_go.replace(
        WARM_GO, "GOCACHE=$PWD/.go/cache")
    boxed, plain = measure(box, root, "go", runs, fresh)
    emit(Row(f"the same Go compile in the sandbox with an empty build cache, median of {runs}",
             ms(median(boxed)), f"outside, warm {ms(median(plain))}",
             median(boxed) / median(plain), "–", None))
