"""Judging figures: a 50-case A+B in C with the compile cache warm, end to end
through API v2 (POST /api/v2/tasks, then the long-poll GET ?wait= until done), against the same
50 cases run as plain subprocesses of the same program built with the preset's gcc command; and
the same for 50 cases of 1 MB input / 1 MB output, inline (50 one-case tasks) and as one task
of a stored problem (its files cached); and the 50 A+B cases as a stored problem,
its test files cold in the executor's file cache (the first task after the upload) and warm
(the next task), beside the inline task of the same rounds.

The 1 MB cases go as 50 tasks of one case each, submitted back to back and then waited for: one
task of 50 such cases (100 MB) is over `max_task_size` inline. Each round times the plain run and
the cluster run one right after the other (same load); the figure is the median of the rounds.
Ratio = plain ÷ Khala (higher is better; 1.0 = no overhead), as the issue states the target."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import requests

from benchmarks.common import KhalaUp, Row, cpu_note, emit, median, ms, role_cpu, wait_for
from tests.problems.packages import AB_TOML, zipped

CASES = 50
A_PLUS_B = ('#include <stdio.h>\nint main(void){long long a,b;'
            'if(scanf("%lld %lld",&a,&b)!=2)return 1;printf("%lld\\n",a+b);return 0;}\n')
COPY = ('#include <stdio.h>\nint main(void){static char b[1<<16];size_t n;'
        'while((n=fread(b,1,sizeof b,stdin))>0)fwrite(b,1,n,stdout);return 0;}\n')
BIG = "".join(f"{i:07d}\n" for i in range(131072))  # 1 MiB of lines


def ab_cases() -> list[dict[str, str]]:
    return [{"input": f"{i} {i * 7}\n", "standard": f"{i * 8}\n"} for i in range(CASES)]


def task_body(source: str, cases: list[dict[str, str]]) -> dict[str, Any]:
    return {"compile": {"language": "c", "files": [{"path": "main.c", "content": source}]},
            "execute": {"timeout": 10, "cases": cases}}


def submit(session: requests.Session, url: str, body: dict[str, Any]) -> str:
    reply = session.post(f"{url}/api/v2/tasks", json=body, timeout=60)
    if reply.status_code != 201:
        raise RuntimeError(f"submission refused: {reply.status_code} {reply.text[:300]}")
    return str(reply.json()["data"]["id"])


def wait_judged(session: requests.Session, url: str, task_id: str) -> dict[str, Any]:
    """The judgement once the task is done (long-poll); raises unless every case passed."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = session.get(f"{url}/api/v2/tasks/{task_id}", params={"wait": "30"}, timeout=90)
        data = got.json().get("data") if got.status_code == 200 else None
        if data is None:
            raise RuntimeError(f"cannot read {task_id}: {got.status_code} {got.text[:200]}")
        if data["done"]:
            judgement = (data.get("result") or {}).get("judgement") or {}
            if judgement.get("verdict") != "accepted":
                raise RuntimeError(f"task {task_id} not accepted: {data}")
            return judgement  # type: ignore[no-any-return]
    raise RuntimeError(f"task {task_id} not done in 120 s")


def judged(session: requests.Session, url: str, bodies: list[dict[str, Any]]) -> float:
    """Seconds from the first POST until every task is seen judged (cache hits asserted)."""
    started = time.perf_counter()
    ids = [submit(session, url, body) for body in bodies]
    for task_id in ids:
        if not wait_judged(session, url, task_id).get("cache_hit"):
            raise RuntimeError(f"task {task_id} missed the compile cache")
    return time.perf_counter() - started


def plain(binary: str, cases: list[dict[str, str]]) -> float:
    """Seconds to run the cases one after another as plain subprocesses, outputs compared."""
    started = time.perf_counter()
    for case in cases:
        done = subprocess.run([binary], input=case["input"].encode(), capture_output=True,
                              timeout=10, check=True)
        if done.stdout.split() != case["standard"].encode().split():
            raise RuntimeError("the plain run gave a wrong answer")
    return time.perf_counter() - started


def build(source: str, where: str) -> str:
    """The program built as the `c` preset builds it (khala/judging/presets.py)."""
    with open(os.path.join(where, "main.c"), "w") as f:
        f.write(source)
    subprocess.run(["gcc", "-std=gnu17", "-O2", "-pipe", "-o", "main", "main.c", "-lm"],
                   cwd=where, check=True, timeout=60)
    return os.path.join(where, "main")


def rounds(count: int, plain_run: Callable[[], float], khala_run: Callable[[], float],
           root: int) -> tuple[list[float], list[float], dict[str, float]]:
    """(plain seconds, Khala seconds, CPU seconds per role over the Khala runs)."""
    plains, khalas = [], []
    cpu = dict.fromkeys(role_cpu(root), 0.0)
    for _ in range(count):
        plains.append(plain_run())
        before = role_cpu(root)
        khalas.append(khala_run())
        after = role_cpu(root)
        cpu = {role: cpu[role] + after[role] - before[role] for role in cpu}
    return plains, khalas, cpu


def stored_package(nonce: int) -> bytes:
    """The 50 A+B cases as a problem package. Every round's files are new to the file cache:
    a line the solution never reads ends each input, blank lines (ignored by the tokens
    compare) each answer."""
    return package([{"input": f"{case['input']}{nonce}\n",
                     "standard": case["standard"] + "\n" * nonce} for case in ab_cases()])


def package(cases: list[dict[str, str]], toml: str = AB_TOML) -> bytes:
    files = {"problem.toml": toml.encode()}
    for i, case in enumerate(cases, 1):
        files[f"tests/{i:02d}.in"] = case["input"].encode()
        files[f"tests/{i:02d}.ans"] = case["standard"].encode()
    return zipped(files)


# The copy program's problem: each case's output is its input (1 MiB and a line), compared
# byte for byte.
COPY_TOML = """
[limits]
time = 2.0
memory = "256M"
output = "4M"
[compare]
mode = "exact"
"""


def big_cases() -> list[dict[str, str]]:
    """50 different 1 MiB inputs (a first line tells them apart), each its own answer."""
    return [{"input": f"case {i}\n{BIG}", "standard": f"case {i}\n{BIG}"} for i in range(CASES)]


def upload(session: requests.Session, url: str, problem: str, package: bytes) -> None:
    reply = session.post(f"{url}/api/v2/problems/{problem}/versions", data=package,
                         headers={"Content-Type": "application/zip"}, timeout=120)
    if reply.status_code != 201:
        raise RuntimeError(f"upload refused: {reply.status_code} {reply.text[:300]}")


def stored_body(problem: str, source: str = A_PLUS_B) -> dict[str, Any]:
    return {"compile": {"language": "c", "files": [{"path": "main.c", "content": source}]},
            "execute": {"problem": {"id": problem}}}


def big_stored_rounds(count: int, session: requests.Session, url: str, binary: str,
                      root: int) -> tuple[list[float], list[float], dict[str, float]]:
    """One task of the 50 cases of 1 MiB as a stored problem, its files cached (a first task
    fetched them), beside the plain loop over the same cases."""
    cases = big_cases()
    upload(session, url, "bench-big", package(cases, COPY_TOML))
    body = stored_body("bench-big", COPY)
    wait_judged(session, url, submit(session, url, body))
    return rounds(count, partial(plain, binary, cases), partial(judged, session, url, [body]),
                  root)


def stored_rounds(count: int, session: requests.Session, url: str, binary: str
                  ) -> dict[str, list[float]]:
    """Per round, one right after another: the plain loop, the upload of a new problem, its
    first task (its files fetched: cold), its second (warm), and the inline task of the same
    cases."""
    times: dict[str, list[float]] = {"plain": [], "cold": [], "warm": [], "inline": []}
    for r in range(count + 1):
        problem = f"bench-ab-{r}"
        # The plain loop first: right after an upload it shared the CPUs with the upload's
        # store writes, and ran at half speed.
        plain_s = plain(binary, ab_cases())
        upload(session, url, problem, stored_package(r + 1))
        cold = judged(session, url, [stored_body(problem)])
        warm = judged(session, url, [stored_body(problem)])
        inline = judged(session, url, [task_body(A_PLUS_B, ab_cases())])
        if r:  # round 0 warms the judicator's and executor's paths of stored problems
            for name, value in (("plain", plain_s), ("cold", cold), ("warm", warm),
                                ("inline", inline)):
                times[name].append(value)
    return times


def emit_stored(times: dict[str, list[float]]) -> None:
    p, inline = median(times["plain"]), median(times["inline"])
    for key, label, target in (
            ("cold", "file cache cold (a new problem's first task)", None),
            ("warm", "file cache warm", 0.5)):
        k = median(times[key])
        emit(Row(f"the same for a stored {CASES}-case problem, {label}, median of "
                 f"{len(times[key])}", f"{ms(k)} ({ms(k / CASES)} a case)",
                 f"{CASES} plain subprocesses {ms(p)}", p / k,
                 "ratio ≥ 0.5 (plain ÷ Khala)" if target else "– (beside inline)",
                 p / k >= target if target else None,
                 f"the inline task in the same rounds {ms(inline)}: stored ÷ inline "
                 f"{k / inline:.2f}x"))


def figure_judge(args: object) -> None:
    count = 3 if getattr(args, "quick", False) else 7
    work = tempfile.mkdtemp(prefix="khala-bench-judge-")
    up = KhalaUp(slots=2)
    try:
        session = requests.Session()
        wait_for(lambda: "c" in {x["name"] for x in session.get(
            f"{up.url}/api/v2/languages", timeout=5).json()["data"]}, 60, "the c preset")
        results = {}
        for name, source, cases, one_task in (
                ("ab", A_PLUS_B, ab_cases(), True),
                ("big", COPY, [{"input": BIG, "standard": BIG}] * CASES, False)):
            os.mkdir(os.path.join(work, name))
            binary = build(source, os.path.join(work, name))
            bodies = ([task_body(source, cases)] if one_task
                      else [task_body(source, [case]) for case in cases])
            wait_judged(session, up.url, submit(session, up.url, task_body(source, cases[:1])))
            results[name] = rounds(count if one_task else max(1, count // 2),
                                   partial(plain, binary, cases),
                                   partial(judged, session, up.url, bodies), up.proc.pid)
            if name == "ab":
                stored = stored_rounds(count, session, up.url, binary)
            else:
                results["bigstored"] = big_stored_rounds(max(1, count // 2), session, up.url,
                                                         binary, up.proc.pid)
    finally:
        up.stop()
        shutil.rmtree(work, ignore_errors=True)
    for name, label in (("ab", f"judging a {CASES}-case A+B in C, warm compile cache, API v2 "
                                "end to end"),
                        ("big", f"the same with 1 case of 1 MB in / 1 MB out, ×{CASES} "
                                "(50 one-case tasks)"),
                        ("bigstored", f"the same {CASES} cases of 1 MB in / 1 MB out as one "
                                      "task of a stored problem, files cached")):
        plains, khalas, cpu = results[name]
        k, p = median(khalas), median(plains)
        emit(Row(f"{label}, median of {len(khalas)}",
                 f"{ms(k)} ({ms(k / CASES)} a case)",
                 f"{CASES} plain subprocesses {ms(p)} ({ms(p / CASES)} a case)", p / k,
                 "ratio ≥ 0.5 (plain ÷ Khala)", p / k >= 0.5,
                 cpu_note(dict.fromkeys(cpu, 0.0), cpu, CASES * len(khalas), "case")))
        if name == "ab":
            emit_stored(stored)
