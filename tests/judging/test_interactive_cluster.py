"""Interactive problems through a real cluster, on warm sandboxes and on cold ones: a
guess-the-number interactor in the testlib style (C++ and Python) against a correct, a slow
(partial points), a wrong, a too-slow, a never-answering and a crashing contestant, and a
crashing interactor — each the right verdict, the contestant's CPU and memory reported, and
no process of a case left behind on the executor."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from khala.model import Case, Checker, Compare, CompareMode, Interactor, Task, Verdict
from tests.fixtures.cluster import Cluster
from tests.judging.conftest import Judging, client_of, task_of, wait_languages
from tests.sandbox.leaks import descendants, unshared_fds

pytestmark = pytest.mark.integration

JURY = Path(__file__).with_name("jury")
GUESS_CPP = (JURY / "guess_interactor.cpp").read_text()
GUESS_PY = (JURY / "guess_interactor.py").read_text()
# The interactor crashes (SIGSEGV) on the program's first query.
CRASHING_INTERACTOR = GUESS_CPP.replace('        if (asked > limit) {',
                                        '        if (asked == 1) *(volatile int *)0 = 1;\n'
                                        '        if (asked > limit) {', 1)
assert CRASHING_INTERACTOR != GUESS_CPP

BINARY_CPP = r"""#include <cstdio>
#include <cstring>
int main() {
    long n; if (std::scanf("%ld", &n) != 1) return 1;
    long lo = 1, hi = n; char reply[4];
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        std::printf("? %ld\n", mid); std::fflush(stdout);
        if (std::scanf("%3s", reply) != 1) return 1;
        if (reply[0] == '=') return 0;
        if (reply[0] == '<') hi = mid - 1; else lo = mid + 1;
    }
    return 0;
}
"""
BINARY_PY = """n = int(input())
lo, hi = 1, n
while lo <= hi:
    mid = (lo + hi) // 2
    print("?", mid, flush=True)
    reply = input().strip()
    if reply == "=":
        break
    if reply == "<":
        hi = mid - 1
    else:
        lo = mid + 1
"""
# Finds it, but by stepping down by 10 from the top first: more queries than needed.
SLOW_PY = """n = int(input())
x = n
while True:
    print("?", x, flush=True)
    reply = input().strip()
    if reply == "=":
        break
    x = x - 10 if reply == "<" else x + 1
"""
# Counts up from 1: past the interactor's query limit.
WRONG_PY = """n = int(input())
x = 1
while True:
    print("?", x, flush=True)
    if input().strip() == "=":
        break
    x += 1
"""
TOO_SLOW_PY = "n = int(input())\nwhile True:\n    pass\n"
NEVER_ANSWERS_PY = "n = int(input())\nimport sys\nsys.stdin.read()\n"
CRASHING_CPP = r"""#include <cstdio>
int main() {
    long n; if (std::scanf("%ld", &n) != 1) return 1;
    std::printf("? 1\n"); std::fflush(stdout);
    volatile int *nowhere = nullptr; *nowhere = 1;
    return 0;
}
"""
INPUT = "1000 777 40\n"  # n, the secret, the query limit; 10 queries would do


@pytest.fixture(scope="module", params=["warm", "cold"])
def judging(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Judging]:
    """The judging cluster, its executor with warm sandboxes (2 per slot) or none."""
    built = Cluster(tmp_path_factory.mktemp(f"interactive-{request.param}"))
    cache_dir = Path(built.work_root) / "cache"
    try:
        built.start_judicator()
        built.start_executor(slots=2, cache_dir=str(cache_dir),
                             warm_sandboxes=2 if request.param == "warm" else 0)
        built.start_gateway()
        client = client_of(built)
        yield Judging(built, client, cache_dir, wait_languages(client, {"cpp", "python3"}))
        client.close()
    finally:
        built.stop()


def interactive(language: str, source: str, interactor: str = GUESS_CPP,
                interactor_language: str = "cpp", timeout: int = 5, cpu_limit: int = 2,
                **execute: object) -> Task:
    name = "main.cpp" if language == "cpp" else "main.py"
    task = task_of(language, name, source, [Case(input=INPUT, standard="10\n", weight=4)],
                   interactor=Interactor(interactor_language, interactor), **execute)
    task.execute.timeout, task.execute.cpu_limit = timeout, cpu_limit
    return task


def left_behind(judging: Judging) -> list[str]:
    """Processes of cases still alive under the executor (a warm pool's boxes are its own)."""
    found = []
    for pid in descendants(judging.cluster.executors[0].pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(mark in argv for mark in ("execute.sh", "interact.sh", "main", "check.sh")):
            found.append(f"{pid}: {argv}")
    return found


def judged(judging: Judging, task: Task) -> tuple[Verdict, str, float, object]:
    done = judging.judge(task)
    j = done.result.judgement if done.result else None
    assert j is not None, done
    assert len(j.cases) == 1
    case = j.cases[0]
    deadline = time.monotonic() + 10  # the executor removes a case's processes as it ends
    while left_behind(judging) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left_behind(judging) == []
    return case.verdict, case.message, case.points, j


@pytest.mark.parametrize(("language", "source", "interactor", "jury_language"), [
    ("cpp", BINARY_CPP, GUESS_CPP, "cpp"),
    ("python3", BINARY_PY, GUESS_CPP, "cpp"),
    ("cpp", BINARY_CPP, GUESS_PY, "python3"),
])
def test_a_correct_contestant_is_accepted(judging: Judging, language: str, source: str,
                                          interactor: str, jury_language: str) -> None:
    verdict, message, points, j = judged(judging, interactive(language, source, interactor,
                                                              jury_language))
    assert (verdict, points) == (Verdict.ACCEPTED, 4.0), message
    assert "found in" in message
    case = j.cases[0]  # type: ignore[attr-defined]
    assert case.memory > 0 and 0 <= case.time < 2  # the contestant's own usage
    assert j.score == 4.0 and j.verdict == Verdict.ACCEPTED  # type: ignore[attr-defined]


@pytest.mark.parametrize("interactor", ["cpp", "python3"])
def test_a_slow_contestant_gets_the_interactors_partial_points(judging: Judging,
                                                               interactor: str) -> None:
    source = GUESS_CPP if interactor == "cpp" else GUESS_PY
    verdict, message, points, _ = judged(judging, interactive("python3", SLOW_PY, source,
                                                              interactor))
    assert (verdict, points) == (Verdict.PARTIAL, 2.0), message
    assert "would do" in message


def test_a_wrong_contestant(judging: Judging) -> None:
    verdict, message, points, _ = judged(judging, interactive("python3", WRONG_PY))
    assert (verdict, points) == (Verdict.WRONG_ANSWER, 0.0), message
    assert "more than 40 queries" in message


def test_a_too_slow_contestant(judging: Judging) -> None:
    """It burns CPU instead of asking: its CPU limit (1 s) ends it long before its wall limit
    (60 s, so a loaded machine still lets it use its second)."""
    verdict, message, _, j = judged(judging, interactive("python3", TOO_SLOW_PY, timeout=60,
                                                         cpu_limit=1))
    assert verdict == Verdict.TIME_LIMIT, message
    assert not message.startswith("idle")
    assert j.cases[0].time >= 1  # type: ignore[attr-defined]


def test_a_contestant_that_never_answers_ends_at_the_wall_limit(judging: Judging) -> None:
    """It waits for input while the interactor waits for its query: a deadlock, ended by the
    program's wall limit with a clear verdict."""
    verdict, message, _, j = judged(judging, interactive("python3", NEVER_ANSWERS_PY,
                                                         timeout=2))
    assert verdict == Verdict.TIME_LIMIT, message
    assert message.startswith("idle: the wall time limit passed while the program waited")
    assert j.cases[0].wall_time >= 2  # type: ignore[attr-defined]


def test_a_crashing_contestant(judging: Judging) -> None:
    verdict, message, _, j = judged(judging, interactive("cpp", CRASHING_CPP))
    assert verdict == Verdict.RUNTIME_ERROR, message
    assert j.cases[0].signal == 11  # type: ignore[attr-defined]


def test_a_crashing_interactor_is_an_internal_error(judging: Judging) -> None:
    """Never the contestant's wrong answer: the jury failed."""
    verdict, message, _, j = judged(judging, interactive("cpp", BINARY_CPP,
                                                         CRASHING_INTERACTOR))
    assert verdict == Verdict.INTERNAL_ERROR, message
    assert "interactor did not finish" in message
    assert j.verdict == Verdict.INTERNAL_ERROR  # type: ignore[attr-defined]


@pytest.mark.parametrize(("limit", "verdict"), [("10", Verdict.ACCEPTED),
                                                ("5", Verdict.WRONG_ANSWER)])
def test_a_checker_reads_the_interactors_output_file(judging: Judging, limit: str,
                                                     verdict: Verdict) -> None:
    """The interactor writes its query count to `output`; a checker then compares it with
    the answer (the most queries allowed)."""
    checker = ("import sys\n"
               "queries = int(open(sys.argv[2]).read())\n"
               "allowed = int(open(sys.argv[3]).read())\n"
               "print(f'{queries} queries, {allowed} allowed', file=sys.stderr)\n"
               "sys.exit(0 if queries <= allowed else 1)\n")
    task = interactive("cpp", BINARY_CPP, compare=Compare(mode=CompareMode.CHECKER,
                                                          checker=Checker("python3", checker)))
    task.execute.cases[0].standard = limit + "\n"
    got, message, _, _ = judged(judging, task)
    assert got == verdict, message
    assert "allowed" in message


def test_no_interactive_pipe_is_left_open_in_the_executor(judging: Judging) -> None:
    """The executor keeps no end of a case's pipes: its fds that no living process below it
    shares do not grow over interactive cases. A warm pool's boxes hold pipes and pidfds of
    their own, more or fewer as boxes are built, prepared and replaced, so those are left out
    by what they are shared with; what is left can still be high for a moment (a pipe being
    handed to a box, a retired box's ends being closed), so the baseline is the least seen
    over a second, and afterwards the count has to come back within the margin. A leak of
    one fd a case over five cases never does."""
    pid = judging.cluster.executors[0].pid
    judged(judging, interactive("cpp", BINARY_CPP))
    before: list[str] | None = None
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        now = unshared_fds(pid)
        before = now if before is None or len(now) < len(before) else before
        time.sleep(0.02)
    assert before is not None
    for _ in range(5):
        judged(judging, interactive("cpp", BINARY_CPP))
    after = unshared_fds(pid)
    deadline = time.monotonic() + 30
    while len(after) > len(before) + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        after = unshared_fds(pid)
    assert len(after) <= len(before) + 2, (before, after)


def test_an_inline_interactor_in_api_v2(judging: Judging) -> None:
    """The interactor travels inline in the JSON body; two groups, one partial."""
    base = judging.cluster.gateway_url
    body = {
        "compile": {"language": "python3",
                    "files": [{"path": "main.py", "content": SLOW_PY}]},
        "execute": {"timeout": 5, "cpu_limit": 2,
                    "cases": [{"input": "1000 1000 40", "standard": "10", "group": "top"},
                              {"input": INPUT, "standard": "10", "group": "mid"}],
                    "groups": [{"name": "top", "points": 30},
                               {"name": "mid", "points": 70, "deps": ["top"]}],
                    "interactor": {"language": "cpp", "source": GUESS_CPP, "timeout": 20}},
    }
    created = requests.post(f"{base}/api/v2/tasks", json=body, timeout=30)
    assert created.status_code == 201, created.text
    shown = created.json()["data"]["execute"]["interactor"]
    assert (shown["language"], shown["timeout"], shown["source"]) == ("cpp", 20, GUESS_CPP)
    ref = created.json()["data"]["id"]
    data: dict[str, Any] = {}
    for _ in range(20):
        data = requests.get(f"{base}/api/v2/tasks/{ref}", params={"wait": 30},
                            timeout=60).json()["data"]
        if data["done"]:
            break
    j = data["result"]["judgement"]
    assert [c["verdict"] for c in j["cases"]] == ["accepted", "partial"], j
    assert [c["points"] for c in j["cases"]] == [1, 0.5]
    assert [(g["name"], g["score"], g["skipped"]) for g in j["groups"]] == [
        ("top", 30, False), ("mid", 35, False)]
    assert (j["verdict"], j["score"], j["max_score"]) == ("partial", 65, 100)


def test_a_program_that_does_not_end_after_the_interactor_is_ended(judging: Judging) -> None:
    """The interactor accepted and ended; the program spins on: it is ended after its grace
    (1 s), a time limit, and nothing of it is left."""
    spinning = BINARY_PY + "while True:\n    pass\n"
    verdict, message, _, _ = judged(judging, interactive("python3", spinning, timeout=30,
                                                         cpu_limit=20))
    assert (verdict, message) == (Verdict.TIME_LIMIT,
                                  "the program did not end after the interactor ended")


def test_an_interactor_that_does_not_end_after_the_program_is_an_internal_error(
        judging: Judging) -> None:
    """The program found the number and ended; the interactor sleeps instead of exiting: it
    is ended after its grace (5 s), the jury's failure."""
    sleeping = GUESS_PY.replace("            if asked <= best:",
                                "            import time\n            time.sleep(3600)\n"
                                "            if asked <= best:", 1)
    assert sleeping != GUESS_PY
    verdict, message, _, _ = judged(judging, interactive("cpp", BINARY_CPP, sleeping, "python3",
                                                         timeout=30))
    assert (verdict, message) == (Verdict.INTERNAL_ERROR,
                                  "the interactor did not end after the program ended")
