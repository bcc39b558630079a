"""The interactive figure: 1,000 question/answer rounds between an interactor and a program,
both in C, judged through API v2 on `khala up` (an inline interactor), against the same two
programs as plain processes joined by a pipe pair. The figure is the case's wall time as the
judgement reports it (the two sandboxes started together, the rounds, both ended): what the
interaction costs in Khala; the end-to-end time (POST → judged) is printed beside it. Each round
times the plain pair right before the Khala task (same load); medians of the rounds."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import requests

from benchmarks.common import KhalaUp, Row, emit, median, ms, wait_for
from benchmarks.judge import submit, wait_judged

ROUNDS = 1000
# The jury, testlib style: argv input output answer; asks each number, expects it + 1 back.
INTERACTOR = r"""#include <stdio.h>
int main(int argc, char **argv) {
    FILE *in = fopen(argv[1], "r"); int n = 0;
    if (!in || fscanf(in, "%d", &n) != 1) return 3;
    for (int i = 0; i < n; i++) {
        long got; printf("%d\n", i); fflush(stdout);
        if (scanf("%ld", &got) != 1 || got != i + 1) return 1;
    }
    printf("-1\n"); fflush(stdout);
    return 0;
}
"""
PROGRAM = r"""#include <stdio.h>
int main(void) {
    long x;
    while (scanf("%ld", &x) == 1 && x >= 0) { printf("%ld\n", x + 1); fflush(stdout); }
    return 0;
}
"""


def build(source: str, where: str, name: str) -> str:
    path = os.path.join(where, name)
    with open(path + ".c", "w") as f:
        f.write(source)
    subprocess.run(["gcc", "-std=gnu17", "-O2", "-pipe", "-o", path, path + ".c"], check=True,
                   timeout=60)
    return path


def plain_pair(interactor: str, program: str, where: str) -> float:
    """Seconds for the two programs joined by two pipes to play the rounds out."""
    with open(os.path.join(where, "input.txt"), "w") as f:
        f.write(f"{ROUNDS}\n")
    to_program_r, to_program_w = os.pipe()
    to_jury_r, to_jury_w = os.pipe()
    started = time.perf_counter()
    jury = subprocess.Popen([interactor, "input.txt", "output.txt", "answer.txt"], cwd=where,
                            stdin=to_jury_r, stdout=to_program_w)
    solver = subprocess.Popen([program], stdin=to_program_r, stdout=to_jury_w)
    for fd in (to_program_r, to_program_w, to_jury_r, to_jury_w):
        os.close(fd)
    codes = (jury.wait(60), solver.wait(60))
    took = time.perf_counter() - started
    if codes != (0, 0):
        raise RuntimeError(f"the plain pair ended {codes}")
    return took


def task_body() -> dict[str, Any]:
    return {"compile": {"language": "c", "files": [{"path": "main.c", "content": PROGRAM}]},
            "execute": {"timeout": 20, "cases": [{"input": f"{ROUNDS}\n", "standard": ""}],
                        "interactor": {"language": "c", "source": INTERACTOR}}}


def khala_run(session: requests.Session, url: str) -> tuple[float, float]:
    """(the case's wall seconds, POST → judged seconds)."""
    started = time.perf_counter()
    judgement = wait_judged(session, url, submit(session, url, task_body()))
    took = time.perf_counter() - started
    return float(judgement["cases"][0]["wall_time"]), took


def figure_interactive(args: object) -> None:
    count = 3 if getattr(args, "quick", False) else 7
    work = tempfile.mkdtemp(prefix="khala-bench-interactive-")
    up = KhalaUp(slots=2)
    plains, walls, ends = [], [], []
    try:
        session = requests.Session()
        wait_for(lambda: "c" in {x["name"] for x in session.get(
            f"{up.url}/api/v2/languages", timeout=5).json()["data"]}, 60, "the c preset")
        interactor = build(INTERACTOR, work, "interactor")
        program = build(PROGRAM, work, "program")
        khala_run(session, up.url)  # the compile caches (program and interactor) filled
        for _ in range(count):
            plains.append(plain_pair(interactor, program, work))
            wall, end = khala_run(session, up.url)
            walls.append(wall)
            ends.append(end)
    finally:
        up.stop()
        shutil.rmtree(work, ignore_errors=True)
    p, k = median(plains), median(walls)
    emit(Row(f"interactive: {ROUNDS:,} question/answer rounds through an interactor, the case's "
             f"wall time, median of {count}", ms(k),
             f"two plain processes on a pipe pair {ms(p)}", k / p, "≤ 2× (Khala ÷ plain)",
             k / p <= 2.0, f"POST → judged {ms(median(ends))}"))
