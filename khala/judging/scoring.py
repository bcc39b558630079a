"""Scores: the points a case earned, how groups of cases score, which cases are skipped after a
failure in their group. Pure (docs/judging.md, "Groups and scores").

- A case earns its weight when accepted, the checker's (or interactor's) points when partial,
  else nothing.
- Without groups the task scores the points of its cases out of the sum of their weights.
- With groups each group scores by its policy: `sum` — its points times the share of its
  cases' weights earned; `min` — its points times the smallest share any of its cases earned
  (all or nothing for cases that are simply accepted or not). A group passes when every case
  of it was accepted and it was not skipped; a group some of whose dependencies (directly or
  through theirs) did not pass is skipped: it scores 0. The task scores the sum of its groups'
  scores out of the sum of their points.

Scores are rounded to 6 decimal places, so sums of shares read as the numbers a person
expects (30, not 29.999999999999996).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from khala.judging.verdicts import case_failed
from khala.model import Case, CaseResult, Group, GroupPolicy, GroupResult, Verdict

PLACES = 6


def exact(value: float) -> float:
    """A score as reported: rounded to PLACES decimals, never -0.0."""
    return round(value, PLACES) + 0.0


def case_points(verdict: Verdict, weight: int, partial: float = 0.0) -> float:
    """What a case earned: its weight when accepted, `partial` (the checker's points) when
    partial, else 0."""
    if verdict == Verdict.ACCEPTED:
        return float(weight)
    if verdict == Verdict.PARTIAL:
        return partial
    return 0.0


def share(case: CaseResult) -> float:
    """The part of its weight a case earned, 0..1 (a weight-0 case: 1 when accepted)."""
    if case.verdict == Verdict.ACCEPTED:
        return 1.0
    if case.verdict == Verdict.PARTIAL and case.weight > 0:
        return min(1.0, max(0.0, case.points / case.weight))
    return 0.0


def plain_score(cases: Sequence[CaseResult]) -> tuple[float, float]:
    """(score, max score) of a task without groups."""
    return exact(sum(c.points for c in cases)), exact(sum(c.weight for c in cases))


def group_verdict(cases: Sequence[CaseResult]) -> Verdict:
    """Internal error when any case is, else the first failed case's verdict, else skipped
    when a case was not run, else accepted."""
    if any(c.verdict == Verdict.INTERNAL_ERROR for c in cases):
        return Verdict.INTERNAL_ERROR
    failed = next((c.verdict for c in cases if case_failed(c.verdict)), None)
    if failed is not None:
        return failed
    if not cases or any(c.verdict == Verdict.SKIPPED for c in cases):
        return Verdict.SKIPPED
    return Verdict.ACCEPTED


def _own_score(group: Group, cases: Sequence[CaseResult]) -> float:
    if not cases:
        return 0.0
    if group.policy == GroupPolicy.MIN:
        return group.points * min(share(c) for c in cases)
    total = sum(c.weight for c in cases)
    if total == 0:  # only weight-0 cases: the group is earned when they all are accepted
        return group.points * min(share(c) for c in cases)
    return group.points * sum(min(c.points, c.weight) for c in cases) / total


def members(groups: Sequence[Group], cases: Sequence[Case]) -> dict[str, list[int]]:
    """Each group's case indices, in case order."""
    found: dict[str, list[int]] = {g.name: [] for g in groups}
    for index, case in enumerate(cases):
        found.setdefault(case.group, []).append(index)
    return found


def _failed_dependency(name: str, groups: Mapping[str, Group],
                       passed_own: Mapping[str, bool]) -> str | None:
    """The first direct dependency of group `name` that did not pass — its own cases, or one
    of its dependencies in turn — or None. Dependencies are acyclic (validated when the task
    was added)."""
    failed: dict[str, bool] = {}

    def fails(group: str) -> bool:
        if group not in failed:
            failed[group] = True  # guards a cycle that validation would have refused
            failed[group] = not passed_own.get(group, False) or any(
                fails(d) for d in groups[group].deps if d in groups)
        return failed[group]

    return next((d for d in groups[name].deps if d in groups and fails(d)), None)


def score_groups(groups: Sequence[Group], cases: Sequence[Case],
                 results: Sequence[CaseResult]) -> tuple[list[GroupResult], float, float]:
    """Each group's result, and the task's (score, max score)."""
    index = members(groups, cases)
    by_name = {g.name: g for g in groups}
    passed_own = {g.name: all(results[i].verdict == Verdict.ACCEPTED for i in index[g.name])
                  and bool(index[g.name]) for g in groups}
    found: list[GroupResult] = []
    for group in groups:
        own = [results[i] for i in index[group.name]]
        dep = _failed_dependency(group.name, by_name, passed_own)
        score = 0.0 if dep is not None else _own_score(group, own)
        found.append(GroupResult(
            name=group.name, verdict=group_verdict(own), score=exact(score),
            max_score=exact(group.points), skipped=dep is not None,
            cases=list(index[group.name]),
            message=f"dependency {dep!r} did not pass" if dep is not None else ""))
    return (found, exact(sum(g.score for g in found)),
            exact(sum(g.points for g in groups)))


def skip_reason(index: int, groups: Sequence[Group], cases: Sequence[Case],
                done: Mapping[int, CaseResult]) -> str | None:
    """With skip_failed_groups, cases run one by one in order: why case `index` is not run
    given the cases `done` so far, or None. Skipped: the rest of a `min` group one of whose
    cases failed, and the cases of a group a dependency of which (directly or through its
    dependencies) has a failed case."""
    by_name = {g.name: g for g in groups}
    name = cases[index].group
    group = by_name.get(name)
    if group is None:
        return None

    def failed(group_name: str) -> bool:
        return any(cases[i].group == group_name and case_failed(r.verdict)
                   for i, r in done.items())

    if group.policy == GroupPolicy.MIN and failed(name):
        return f"group {name!r} failed already"
    seen: set[str] = set()
    stack = list(group.deps)
    while stack:
        dep = stack.pop()
        if dep in seen or dep not in by_name:
            continue
        seen.add(dep)
        if failed(dep):
            return f"dependency {dep!r} failed"
        stack.extend(by_name[dep].deps)
    return None
