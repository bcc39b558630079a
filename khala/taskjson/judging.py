"""API v2's typed models of judging (docs/judging.md): test cases, groups, checkers,
interactors and a stored problem to judge against as a task asks for them, and the judgement
(per case, per group) and history of earlier judgements a task answers with."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from khala.model import INT_MAX
from khala.problems.model import PROBLEM_ID_PATTERN
from khala.taskjson.base import (
    BYTES_MAX,
    GROUP_PATTERN,
    LanguageName,
    Number,
    PositiveSeconds,
    StatusName,
    Strict,
)

# ----------------------------------------------------------------------------- input


class CaseIn(Strict):
    """One test case (docs/judging.md): input, expected output, weight, its own limits."""

    input: str = Field("", description="fed to the program's stdin")
    standard: str = Field("", description="the expected output")
    weight: int = Field(1, ge=0, le=INT_MAX, description="points when accepted")
    timeout: PositiveSeconds | None = Field(None, description="wall seconds; none = the task's")
    cpu_limit: PositiveSeconds | None = Field(None, description="CPU seconds; none = the task's")
    memory_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes")
    output_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes per stream")
    group: str | None = Field(None, pattern=GROUP_PATTERN,
                              description="the name of its group (execute.groups)")


class GroupIn(Strict):
    """A group of cases (a subtask) scored together (docs/judging.md)."""

    name: str = Field(pattern=GROUP_PATTERN, examples=["small"])
    points: float = Field(ge=0, le=INT_MAX, allow_inf_nan=False,
                          description="what the group is worth")
    policy: Literal["sum", "min"] = Field(
        "sum", description="sum: points × the share of its cases' weights earned; min: all or "
        "nothing (points × the smallest share any case earned)")
    deps: list[str] = Field(default_factory=list, max_length=1000,
                            description="groups that must pass (all their cases accepted), "
                            "else this one scores 0 and is marked skipped")


class InteractorIn(Strict):
    """An interactive problem's jury program: talks to the program through pipes; its exit
    code decides the case (testlib conventions, docs/judging.md)."""

    language: LanguageName
    source: str = Field(min_length=1, description="its one source file; run as `<run> "
                        "input.txt output.txt answer.txt`")
    timeout: int | None = Field(None, ge=1, le=INT_MAX, description="wall seconds")
    cpu_limit: int | None = Field(None, ge=1, le=INT_MAX, description="CPU seconds")
    memory_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes")


class CheckerIn(Strict):
    language: LanguageName = Field(strict=False)
    source: str = Field(min_length=1, description="the checker's one source file (testlib "
                        "exit codes: 0 accepted, 1 wrong answer, 2 presentation error, "
                        "3 checker failure, 7 partial points)")


class CompareIn(Strict):
    mode: Literal["exact", "lines", "tokens", "float", "checker"] = "lines"
    abs_tol: float = Field(1e-6, ge=0, allow_inf_nan=False, description="mode float")
    rel_tol: float = Field(1e-6, ge=0, allow_inf_nan=False, description="mode float")
    checker: CheckerIn | None = Field(None, description="mode checker")


class ProblemRefIn(Strict):
    """A stored problem to be judged against (GET /api/v2/problems): its cases, limits,
    checker, interactor and groups replace the task's own (leave those out)."""

    id: str = Field(pattern=PROBLEM_ID_PATTERN, examples=["aplusb"])
    version: int = Field(0, ge=0, le=INT_MAX, description="0 = the latest when submitted")


# ----------------------------------------------------------------------------- output


class OutputFileOut(BaseModel):
    name: str
    size: int = Field(description="bytes the run left in the file")
    content: str | None = Field(description="base64 of its bytes; null when not returned")
    error: str | None = Field(description="why not returned: missing, not a regular file, "
                              "over the output limit")


class CaseResultOut(BaseModel):
    verdict: str = Field(examples=["accepted", "wrong_answer", "time_limit", "partial"])
    weight: int
    points: Number = Field(0, description="earned of its weight (partial: the checker's share "
                           "of it)")
    time: float = Field(description="CPU seconds")
    wall_time: float
    memory: int = Field(description="peak bytes")
    exit_code: int | None
    signum: int | None
    output: str = Field(description="stdout, cut")
    error: str = Field(description="stderr, cut")
    message: str = Field(description="the first difference, or the checker's comment")
    files: list[OutputFileOut] = Field(default_factory=list, description="execute.outputs")


class GroupResultOut(BaseModel):
    name: str
    verdict: str = Field(description="accepted, else its first failed case's; skipped when a "
                         "dependency did not pass")
    score: Number
    max_score: Number = Field(description="the group's points")
    skipped: bool = Field(description="a dependency did not pass: scored 0")
    cases: list[int] = Field(description="indices (0-based) of its cases")
    message: str


class JudgementOut(BaseModel):
    verdict: str = Field(examples=["accepted", "wrong_answer", "compile_error"])
    score: Number = Field(description="without groups: the points of the cases; with groups: "
                          "the sum of the groups' scores (6 decimal places at most)")
    max_score: Number
    cases: list[CaseResultOut]
    groups: list[GroupResultOut] = Field(default_factory=list)
    language: str = Field(description="the preset's version on the executor")
    compiles: int = Field(description="compile steps run for this task")
    cache_hit: bool
    message: str


class CheckerOut(BaseModel):
    language: str
    source: str


class CompareOut(BaseModel):
    mode: str
    abs_tol: float
    rel_tol: float
    checker: CheckerOut | None


class GroupOut(BaseModel):
    name: str
    points: Number
    policy: str
    deps: list[str]


class InteractorOut(BaseModel):
    language: str
    source: str
    timeout: int | None
    cpu_limit: int | None
    memory_limit: int | None


class ProblemRefOut(BaseModel):
    id: str
    version: int = Field(description="as asked: 0 = the latest when submitted")
    judged: int = Field(description="the version it is (was) judged against")
    spec: str = Field(description="sha256 of that version's spec")


class JudgedOut(BaseModel):
    """A judgement the task had before a rejudge."""

    at: str = Field(description="when it was replaced")
    rejudge: str
    version: int = Field(description="the problem version it was judged against")
    status: StatusName
    executor: str | None
    report_time: str
    judgement: JudgementOut | None
