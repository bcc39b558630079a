"""Groups and scores through a real cluster: sum and all-or-nothing (min) groups, a dependency
that skips a group, partial points from testlib-style checkers in C++ and Python, and the exact
score and per-group results of a wrong answer in group 2 — over Thrift and over API v2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from khala.model import Case, Checker, Compare, CompareMode, Group, GroupPolicy, Verdict
from tests.judging.conftest import Judging, task_of

pytestmark = pytest.mark.integration  # a real cluster (the `judging` fixture)

JURY = Path(__file__).with_name("jury")
# Doubles its input, except 13 and 666 (wrong on purpose).
DOUBLE = ("n = int(input())\n"
          "print(n * 2 + (1 if n in (13, 666) else 0))\n")
SUM, MIN = GroupPolicy.SUM, GroupPolicy.MIN


def case(n: int, group: str, weight: int = 1) -> Case:
    return Case(input=f"{n}\n", standard=f"{n * 2}\n", group=group, weight=weight)


def groups_task() -> tuple[list[Case], list[Group]]:
    """g1 sum 30 (all right), g2 min 30 after g1 (13 wrong), g3 sum 40 after g2 (right but
    skipped), g4 sum 20 after g1 (666 wrong: half of it)."""
    cases = [case(1, "g1"), case(2, "g1"), case(3, "g1"),
             case(4, "g2"), case(13, "g2"),
             case(5, "g3"),
             case(6, "g4"), case(666, "g4")]
    groups = [Group("g1", 30, SUM), Group("g2", 30, MIN, ["g1"]),
              Group("g3", 40, SUM, ["g2"]), Group("g4", 20, SUM, ["g1"])]
    return cases, groups


EXPECTED_GROUPS = [
    {"name": "g1", "verdict": "accepted", "score": 30.0, "max_score": 30.0, "skipped": False,
     "cases": [0, 1, 2], "message": ""},
    {"name": "g2", "verdict": "wrong_answer", "score": 0.0, "max_score": 30.0, "skipped": False,
     "cases": [3, 4], "message": ""},
    {"name": "g3", "verdict": "accepted", "score": 0.0, "max_score": 40.0, "skipped": True,
     "cases": [5], "message": "dependency 'g2' did not pass"},
    {"name": "g4", "verdict": "wrong_answer", "score": 10.0, "max_score": 20.0,
     "skipped": False, "cases": [6, 7], "message": ""},
]


def test_a_wrong_answer_in_group_2_scores_exactly(judging: Judging) -> None:
    cases, groups = groups_task()
    done = judging.judge(task_of("python3", "main.py", DOUBLE, cases, groups=groups))
    j = done.result.judgement if done.result else None
    assert j is not None, done
    assert [c.verdict for c in j.cases] == [Verdict.ACCEPTED] * 4 + [Verdict.WRONG_ANSWER] + [
        Verdict.ACCEPTED] * 2 + [Verdict.WRONG_ANSWER]
    assert [c.points for c in j.cases] == [1, 1, 1, 1, 0, 1, 1, 0]
    assert (j.verdict, j.score, j.max_score) == (Verdict.WRONG_ANSWER, 40.0, 120.0)
    got = [{"name": g.name, "verdict": str(g.verdict), "score": g.score,
            "max_score": g.max_score, "skipped": g.skipped, "cases": g.cases,
            "message": g.message} for g in j.groups]
    assert got == EXPECTED_GROUPS


def _v2(judging: Judging, body: dict[str, Any]) -> dict[str, Any]:
    base = judging.cluster.gateway_url
    created = requests.post(f"{base}/api/v2/tasks", json=body, timeout=30)
    assert created.status_code == 201, created.text
    ref = created.json()["data"]["id"]
    for _ in range(20):  # each answer is held until done or 30 s pass
        data: dict[str, Any] = requests.get(f"{base}/api/v2/tasks/{ref}", params={"wait": 30},
                                            timeout=60).json()["data"]
        if data["done"]:
            return data
    raise AssertionError(f"task {ref} not done")


def test_the_same_task_in_api_v2(judging: Judging) -> None:
    cases, groups = groups_task()
    body = {
        "compile": {"language": "python3", "files": [{"path": "main.py", "content": DOUBLE}]},
        "execute": {
            "timeout": 10,
            "cases": [{"input": c.input, "standard": c.standard, "group": c.group}
                      for c in cases],
            "groups": [{"name": g.name, "points": g.points, "policy": str(g.policy),
                        "deps": g.deps} for g in groups],
        },
    }
    done = _v2(judging, body)
    assert done["execute"]["groups"][1] == {"name": "g2", "points": 30.0, "policy": "min",
                                            "deps": ["g1"]}
    j = done["result"]["judgement"]
    assert (j["verdict"], j["score"], j["max_score"]) == ("wrong_answer", 40.0, 120.0)
    assert j["groups"] == EXPECTED_GROUPS
    assert [c["points"] for c in j["cases"]] == [1, 1, 1, 1, 0, 1, 1, 0]


# Prints three lines for the three numbers of its input; the third is wrong when the input
# says "bad".
THREE = ("words = input().split()\n"
         "for i, w in enumerate(words[:3]):\n"
         "    print(w.upper() if i < 2 or 'bad' not in words else 'nope')\n")


def partial_cases() -> list[Case]:
    """In each group one case all right (accepted) and one with two of its three lines right
    (partial)."""
    return [
        Case(input="a b c\n", standard="A\nB\nC\n", weight=3, group="s"),
        Case(input="x y bad\n", standard="X\nY\nBAD\n", weight=3, group="s"),
        Case(input="p q r\n", standard="P\nQ\nR\n", weight=1, group="m"),
        Case(input="m n bad\n", standard="M\nN\nBAD\n", weight=1, group="m"),
    ]


@pytest.mark.parametrize("checker", ["cpp", "python3"])
def test_partial_points_from_a_testlib_style_checker(judging: Judging, checker: str) -> None:
    """The checker exits 7 with "points 0.6666666667" for two lines of three: a sum group
    scales it, a min group takes the smallest share."""
    suffix = "cpp" if checker == "cpp" else "py"
    source = (JURY / f"lines_checker.{suffix}").read_text()
    compare = Compare(mode=CompareMode.CHECKER, checker=Checker(checker, source))
    groups = [Group("s", 60, SUM), Group("m", 40, MIN, ["s"])]
    done = judging.judge(task_of("python3", "main.py", THREE, partial_cases(), compare,
                                 groups=groups))
    j = done.result.judgement if done.result else None
    assert j is not None, done
    assert [c.verdict for c in j.cases] == [Verdict.ACCEPTED, Verdict.PARTIAL,
                                            Verdict.ACCEPTED, Verdict.PARTIAL], j
    assert [round(c.points, 6) for c in j.cases] == [3, 2, 1, 0.666667]
    assert "2 of 3 lines right" in j.cases[1].message
    # s: 60 × (3 + 2) / 6 = 50; m depends on s, which did not pass (a partial case): skipped.
    assert [(g.name, g.score, g.skipped) for g in j.groups] == [("s", 50.0, False),
                                                                ("m", 0.0, True)]
    assert (j.verdict, j.score, j.max_score) == (Verdict.PARTIAL, 50.0, 100.0)


def test_min_group_takes_the_smallest_share(judging: Judging) -> None:
    source = (JURY / "lines_checker.py").read_text()
    compare = Compare(mode=CompareMode.CHECKER, checker=Checker("python3", source))
    groups = [Group("s", 60, SUM), Group("m", 40, MIN)]  # no dependency this time
    done = judging.judge(task_of("python3", "main.py", THREE, partial_cases(), compare,
                                 groups=groups))
    j = done.result.judgement if done.result else None
    assert j is not None, done
    # m: 40 × min(1, 2/3) = 26.666667
    assert [(g.name, g.score) for g in j.groups] == [("s", 50.0), ("m", 26.666667)]
    assert j.score == 76.666667


def test_skip_failed_groups_skips_the_rest(judging: Judging) -> None:
    """One by one: after 13 fails in min group g2, g2's later case is not run, nor is g3
    (depends on g2); g4 runs."""
    cases = [case(4, "g2"), case(13, "g2"), case(7, "g2"), case(5, "g3"), case(6, "g4")]
    groups = [Group("g2", 30, MIN), Group("g3", 40, SUM, ["g2"]), Group("g4", 20, SUM)]
    done = judging.judge(task_of("python3", "main.py", DOUBLE, cases, groups=groups,
                                 skip_failed_groups=True))
    j = done.result.judgement if done.result else None
    assert j is not None, done
    assert [c.verdict for c in j.cases] == [Verdict.ACCEPTED, Verdict.WRONG_ANSWER,
                                            Verdict.SKIPPED, Verdict.SKIPPED, Verdict.ACCEPTED]
    assert j.cases[2].message == "skipped: group 'g2' failed already"
    assert j.cases[3].message == "skipped: dependency 'g2' failed"
    assert [(g.name, str(g.verdict), g.score, g.skipped) for g in j.groups] == [
        ("g2", "wrong_answer", 0.0, False), ("g3", "skipped", 0.0, True),
        ("g4", "accepted", 20.0, False)]
    assert (j.verdict, j.score, j.max_score) == (Verdict.WRONG_ANSWER, 20.0, 90.0)
