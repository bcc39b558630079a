"""Stored problems that score by groups and talk through an interactor, through a real cluster
(a judicator on SQLite, an executor in bwrap, a gateway): a package with a sum group, an
all-or-nothing group depending on it and a Python checker giving partial points — a wrong
answer in group 2, a partial run in group 1 (group 2 then skipped), and a right one, each with
its score and per-group results exactly; a package with a guess-the-number interactor — the
interactor reads the cached input in place — with a correct, a slow (partial) and a wrong
contestant; the same in Polygon's layout (problem.xml, groups and points, its interactor)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.problems import helpers as h

pytestmark = pytest.mark.integration

JURY = Path(__file__).parents[1] / "judging" / "jury"
LINES_CHECKER = (JURY / "lines_checker.py").read_bytes()  # exit 7 + "points x": partial
GUESS_INTERACTOR = (JURY / "guess_interactor.py").read_bytes()

GROUPS_TOML = """
title = "Sum and difference"
[limits]
time = 2.0
[[groups]]
name = "g1"
points = 40
policy = "sum"
[[groups]]
name = "g2"
points = 60
policy = "min"
deps = ["g1"]
"""
G1 = [(1, 2), (5, 3)]
G2 = [(1000, 1), (2000, 5), (3000, 7)]

# Each prints a + b and a - b on two lines (the answer's); "half" gets the difference wrong
# everywhere (the checker gives half), "wrong2" gets both wrong in g2's cases (a > 100).
SUMDIFF = {
    "right": "a, b = map(int, input().split())\nprint(a + b)\nprint(a - b)\n",
    "half": "a, b = map(int, input().split())\nprint(a + b)\nprint(a - b + 1)\n",
    "wrong2": ("a, b = map(int, input().split())\n"
               "print(a + b if a < 100 else 0)\nprint(a - b if a < 100 else 0)\n"),
}

GUESS_TOML = """
title = "Guess the number"
[limits]
time = 2.0
wall = 10.0
"""
GUESSES = [(100, 37, 7), (1000, 999, 10), (1, 1, 1)]  # n, secret, most queries
GUESS = {
    "binary": """n = int(input())
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
""",
    # from the top down by one: the secret 999 of 1000 in 2 queries, 37 of 100 in 64 (> 7)
    "down": """n = int(input())
x = n
while True:
    print("?", x, flush=True)
    if input().strip() == "=":
        break
    x -= 1
""",
}

POLYGON_XML = """<?xml version="1.0" encoding="utf-8"?>
<problem revision="3" short-name="guess-groups">
  <names><name language="english" value="Guess, in groups"/></names>
  <judging input-file="" output-file="">
    <testset name="tests">
      <time-limit>2000</time-limit>
      <memory-limit>268435456</memory-limit>
      <test-count>3</test-count>
      <input-path-pattern>tests/%02d</input-path-pattern>
      <answer-path-pattern>tests/%02d.a</answer-path-pattern>
      <tests>
        <test group="small" points="10"/>
        <test group="large" points="45"/>
        <test group="large" points="45"/>
      </tests>
      <groups>
        <group name="small" points-policy="each-test"/>
        <group name="large" points-policy="complete-group">
          <dependencies><dependency group="small"/></dependencies>
        </group>
      </groups>
    </testset>
  </judging>
  <assets>
    <interactor><source path="files/interactor.py" type="python.3"/></interactor>
  </assets>
</problem>
"""


def groups_package() -> dict[str, bytes]:
    files = {"problem.toml": GROUPS_TOML.encode(), "checker.py": LINES_CHECKER}
    for group, pairs in (("g1", G1), ("g2", G2)):
        for i, (a, b) in enumerate(pairs, start=1):
            files[f"tests/{group}/{i}.in"] = f"{a} {b}\n".encode()
            files[f"tests/{group}/{i}.ans"] = f"{a + b}\n{a - b}\n".encode()
    return files


def guess_package() -> dict[str, bytes]:
    files = {"problem.toml": GUESS_TOML.encode(), "interactor.py": GUESS_INTERACTOR}
    for i, (n, secret, limit) in enumerate(GUESSES, start=1):
        files[f"tests/{i}.in"] = f"{n} {secret} {limit}\n".encode()
        files[f"tests/{i}.ans"] = f"{secret}\n".encode()
    return files


def polygon_guess_package() -> dict[str, bytes]:
    files = {"problem.xml": POLYGON_XML.encode(), "files/interactor.py": GUESS_INTERACTOR}
    for i, (n, secret, limit) in enumerate([(10, 3, 4), (100, 37, 7), (1000, 999, 10)],
                                           start=1):
        files[f"tests/{i:02d}"] = f"{n} {secret} {limit}\n".encode()
        files[f"tests/{i:02d}.a"] = f"{secret}\n".encode()
    return files


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    c = Cluster(tmp_path_factory.mktemp("jury"))
    try:
        c.start_judicator()
        c.start_executor(slots=2)
        c.start_gateway()
        h.wait_languages(c.gateway_url, "python3")
        yield c.gateway_url
    finally:
        c.stop()


def judged(url: str, problem: str, source: str) -> dict[str, Any]:
    body = {"compile": {"language": "python3",
                        "files": [{"path": "main.py", "content": source}]},
            "execute": {"problem": {"id": problem}}}
    task = h.finished(url, h.submit(url, body))
    judgement: dict[str, Any] = task["result"]["judgement"]
    assert task["execute"]["problem"]["judged"] == 1, task["execute"]["problem"]
    return judgement


def groups_of(judgement: dict[str, Any]) -> list[tuple[str, str, Any, Any, bool, list[int]]]:
    return [(g["name"], g["verdict"], g["score"], g["max_score"], g["skipped"], g["cases"])
            for g in judgement["groups"]]


def test_groups_and_a_partial_checker_score_a_stored_problem(url: str) -> None:
    made = h.upload(url, "sumdiff", groups_package())
    version = requests.get(f"{url}/api/v2/problems/sumdiff/versions/1", timeout=30).json()
    assert made["data"]["versions"][0]["checker"] == "python3", made
    assert [g["name"] for g in version["data"]["groups"]] == ["g1", "g2"], version

    right = judged(url, "sumdiff", SUMDIFF["right"])
    assert (right["verdict"], right["score"], right["max_score"]) == ("accepted", 100, 100)
    assert groups_of(right) == [("g1", "accepted", 40, 40, False, [0, 1]),
                                ("g2", "accepted", 60, 60, False, [2, 3, 4])]

    wrong = judged(url, "sumdiff", SUMDIFF["wrong2"])
    assert (wrong["verdict"], wrong["score"], wrong["max_score"]) == ("wrong_answer", 40, 100)
    assert groups_of(wrong) == [("g1", "accepted", 40, 40, False, [0, 1]),
                                ("g2", "wrong_answer", 0, 60, False, [2, 3, 4])]
    assert [c["verdict"] for c in wrong["cases"]] == ["accepted"] * 2 + ["wrong_answer"] * 3

    half = judged(url, "sumdiff", SUMDIFF["half"])
    assert [(c["verdict"], c["points"]) for c in half["cases"]] == [("partial", 0.5)] * 5
    assert (half["verdict"], half["score"], half["max_score"]) == ("partial", 20, 100)
    assert groups_of(half) == [("g1", "partial", 20, 40, False, [0, 1]),
                               ("g2", "partial", 0, 60, True, [2, 3, 4])]
    assert half["groups"][1]["message"] == "dependency 'g1' did not pass"


def test_a_stored_interactive_problem_reads_its_cached_inputs(url: str) -> None:
    made = h.upload(url, "guess", guess_package())
    assert made["data"]["versions"][0]["interactor"] == "python3", made

    found = judged(url, "guess", GUESS["binary"])
    assert found["verdict"] == "accepted", found
    assert [c["verdict"] for c in found["cases"]] == ["accepted"] * 3

    slow = judged(url, "guess", GUESS["down"])
    # 37 of 100 takes 64 queries (more than 7: wrong); 999 of 1000 two (more than the best,
    # 10: still found within its limit, so accepted); 1 of 1 one
    assert [c["verdict"] for c in slow["cases"]] == ["wrong_answer", "accepted", "accepted"]
    assert "more than 7 queries" in slow["cases"][0]["message"], slow["cases"][0]
    assert (slow["verdict"], slow["score"], slow["max_score"]) == ("wrong_answer", 2, 3)


def test_a_polygon_interactive_package_with_groups(url: str) -> None:
    made = h.upload(url, "guess-groups", polygon_guess_package(), layout="polygon")
    version = made["data"]["versions"][0]
    assert version["interactor"] == "python3", made

    found = judged(url, "guess-groups", GUESS["binary"])
    assert (found["verdict"], found["score"], found["max_score"]) == ("accepted", 100, 100)

    slow = judged(url, "guess-groups", GUESS["down"])
    # small (3 of 10: 8 queries > 4) fails, so large, which depends on it, is skipped (its
    # cases still run: the package does not ask to skip them)
    assert [c["verdict"] for c in slow["cases"]] == ["wrong_answer", "wrong_answer", "accepted"]
    assert groups_of(slow) == [("small", "wrong_answer", 0, 10, False, [0]),
                               ("large", "wrong_answer", 0, 90, True, [1, 2])]
    assert (slow["score"], slow["max_score"]) == (0, 100)
