"""The typed models of API v2 (pydantic). The routes validate with them and the OpenAPI
document is generated from them, so the spec cannot drift from the code."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from khala.images.model import IMAGE_PATTERN
from khala.judging.presets import PRESETS
from khala.model import INT_MAX, PRIORITY_MAX, PRIORITY_MIN
from khala.problems.model import PROBLEM_ID_PATTERN
from khala.rules.limits import BYTES_LIMIT_MAX as BYTES_MAX

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
GROUP_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_OUTPUTS = 64  # files a task may ask back (khala/judging/validate.py holds the same bound)

TaskId = Annotated[str, Field(pattern=ID_PATTERN, examples=["sum-42"])]
ImageName = Annotated[str, Field(pattern=IMAGE_PATTERN, examples=["debian-gcc", "busybox:2"])]
IMAGE_WORDS = ("the image the step runs in (GET /api/v2/images): its root filesystem, "
               "read-only, instead of the executor's; name = its latest version when submitted")
# A score or points: an integer when whole (as scores were before partial points), else a
# number with at most 6 decimal places.
Number = int | float
# Seconds, fractions allowed (khala/rules/seconds.py): 0 = the limits policy's default.
Seconds = Annotated[float, Field(ge=0, le=INT_MAX, allow_inf_nan=False, examples=[2, 1.5])]
PositiveSeconds = Annotated[float, Field(ge=0.001, le=INT_MAX, allow_inf_nan=False,
                                         examples=[1.5])]


class StatusName(StrEnum):
    """A task's status (seed codes 0..8 in order)."""

    pending = "pending"
    compiling = "compiling"
    compile_failed = "compile_failed"
    running = "running"
    run_failed = "run_failed"
    success = "success"
    retrying = "retrying"
    cancelled = "cancelled"
    unknown_error = "unknown_error"


STATUS_NAMES = list(StatusName)  # index = seed status code


class Strict(BaseModel):
    """An input model: no unknown fields, and no conversions between JSON types (true is not
    1, 1.5 is not an integer, "3" is not a number; an integer is a number). Enums (language
    names) are given by their string values, also in a batch item's dict."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ----------------------------------------------------------------------------- input


class File(Strict):
    """One file of the work directory (compile) or of data/ (execute)."""

    path: str = Field(min_length=1, max_length=4096, examples=["main.c"])
    content: str = Field(description="the file's text, or base64 when encoding is base64")
    encoding: Literal["text", "base64"] = "text"


LanguageName = StrEnum("LanguageName", {n: n for n in PRESETS})  # type: ignore[misc]


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


class CompileIn(Strict):
    command: str = Field("", description="run with bash in the work directory; empty with a "
                         "language", examples=["gcc -O2 -o main main.c"])
    language: LanguageName | None = Field(
        None, strict=False, description="a preset filling both commands (GET /api/v2/languages)")
    timeout: Seconds = Field(0, description="wall seconds (1.5 allowed); 0 = the operator's "
                             "default; capped to the operator's maximum")
    memory_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes")
    files: list[File] = Field(default_factory=list, max_length=10000,
                              description="source files, or give `zip`")
    zip: str | None = Field(None, description="base64 of a zip of the source files")
    image: ImageName | None = Field(None, description=IMAGE_WORDS)


class ProblemRefIn(Strict):
    """A stored problem to be judged against (GET /api/v2/problems): its cases, limits,
    checker, interactor and groups replace the task's own (leave those out)."""

    id: str = Field(pattern=PROBLEM_ID_PATTERN, examples=["aplusb"])
    version: int = Field(0, ge=0, le=INT_MAX, description="0 = the latest when submitted")


class ExecuteIn(Strict):
    command: str = Field("", examples=["./main"], description="empty with a language")
    input: str = Field("", description="fed to the command's stdin")
    timeout: Seconds = Field(0, description="wall seconds (1.5 allowed); 0 = the operator's "
                             "default; capped to the operator's maximum")
    standard: str = Field("", description="expected output, compared when the task is judged")
    memory_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes")
    cpu_limit: PositiveSeconds | None = Field(
        None, description="CPU seconds (1.5 allowed); none = the operator's default")
    pids_limit: int | None = Field(None, ge=1, le=INT_MAX)
    output_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes per stream")
    disk_limit: int | None = Field(
        None, ge=1, le=BYTES_MAX, description="bytes of the run's work area (its files in all); "
        "none = the executor's default")
    files: list[File] = Field(default_factory=list, max_length=10000,
                              description="data files (placed in data/), or give `zip`")
    zip: str | None = Field(None, description="base64 of a zip of the data files")
    cases: list[CaseIn] = Field(default_factory=list,
                                description="test cases; empty = one case, input + standard; "
                                "at most the limits policy's max_cases (1000 by default)")
    compare: CompareIn | None = Field(None, description="how outputs are compared")
    stop_on_failure: bool = Field(False, description="skip the cases after the first failure")
    interactive: bool = Field(False, description="stdin comes live over pow-1 after `input` "
                              "(docs/streaming.md)")
    groups: list[GroupIn] = Field(default_factory=list, max_length=1000,
                                  description="groups of cases scored together; every case then "
                                  "names its group")
    skip_failed_groups: bool = Field(
        False, description="with groups: run the cases one by one, skipping the rest of a failed "
        "min group and the cases of a group whose dependency failed")
    interactor: InteractorIn | None = Field(None, description="an interactive problem's jury "
                                            "program")
    outputs: list[str] = Field(default_factory=list, max_length=MAX_OUTPUTS,
                               description="files the run writes (paths relative to its work "
                               "directory), returned byte for byte with the result")
    problem: ProblemRefIn | None = Field(None, description="judge against a stored problem "
                                         "(with compile.language) instead of cases")
    image: ImageName | None = Field(None, description=IMAGE_WORDS)


class TaskIn(Strict):
    """A task to run: a compile step, then an execute step."""

    user: int = Field(0, ge=0, le=INT_MAX)
    priority: int = Field(0, ge=PRIORITY_MIN, le=PRIORITY_MAX,
                          description="higher is dispatched first; equal: fair between users")
    compile: CompileIn
    execute: ExecuteIn
    callback_url: str | None = Field(
        None, max_length=2048, description="POSTed the task's JSON when it finishes "
        "(http or https; not the cluster's own addresses); see docs/security.md")


class BatchItem(TaskIn):
    id: TaskId | None = Field(None, description="a client-chosen id (idempotent), or none")


class BatchIn(Strict):
    tasks: list[BatchItem] = Field(min_length=1, max_length=1000)


# ----------------------------------------------------------------------------- output


class ExitStatus(BaseModel):
    exit_code: int | None = Field(description="when the process exited")
    signum: int | None = Field(description="when a signal ended it")
    core_dump: bool


class Rusage(BaseModel):
    utime: float | None = Field(description="user CPU seconds; null: not measured apart "
                                "(an executor older than the measure)")
    stime: float | None = Field(description="system CPU seconds; null: not measured apart")
    cpu_time: float = Field(description="user + system CPU seconds")
    maxrss: int = Field(description="peak memory, bytes")


class StepResult(BaseModel):
    status: ExitStatus | None
    rusage: Rusage | None
    pid: int | None = Field(None, description="the step's process on its executor host")
    wall_time: float = Field(description="seconds")
    reason: str = Field(examples=["ok", "nonzero_exit", "time_limit", "memory_limit"])
    errors: list[str] = Field(description="Khala's own problems running the step")


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


class Results(BaseModel):
    compile: StepResult | None
    execute: StepResult | None = Field(description="judged tasks: the first case")
    judgement: JudgementOut | None = None
    files: list[OutputFileOut] = Field(default_factory=list,
                                 description="execute.outputs of a task that is not judged")


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


class ImageRefOut(BaseModel):
    name: str
    version: int = Field(description="as asked: 0 = the latest when submitted")
    resolved: int = Field(description="the version the step runs in")
    sha256: str = Field(description="sha256 of that version's tar")


class CompileOut(BaseModel):
    command: str
    timeout: int | float
    memory_limit: int | None
    has_source: bool
    language: str | None = None
    image: ImageRefOut | None = None


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


class ExecuteOut(BaseModel):
    command: str
    input: str
    timeout: int | float
    standard: str
    memory_limit: int | None
    cpu_limit: int | float | None
    pids_limit: int | None
    output_limit: int | None
    disk_limit: int | None = Field(description="bytes of the run's work area")
    has_data: bool
    cases: int = Field(0, description="number of test cases")
    compare: CompareOut | None = None
    stop_on_failure: bool = False
    interactive: bool = False
    groups: list[GroupOut] = Field(default_factory=list)
    skip_failed_groups: bool = False
    interactor: InteractorOut | None = None
    outputs: list[str] = Field(default_factory=list)
    problem: ProblemRefOut | None = None
    image: ImageRefOut | None = None


class TaskSummary(BaseModel):
    id: str = Field(description="the client-chosen id, else the seed id")
    seed_id: str = Field(description="the 24-hex id of the seed API")
    user: int
    status: StatusName
    status_code: int = Field(ge=0, le=8)
    done: bool
    executor: str | None
    add_time: str
    report_time: str | None


class WebhookOut(BaseModel):
    url: str
    state: Literal["pending", "ready", "sending", "delivered", "failed"]
    attempts: int
    last_status: int | None = Field(description="HTTP status of the last try")
    last_error: str
    delivered_at: str | None


class TaskOut(TaskSummary):
    priority: int
    compile: CompileOut
    execute: ExecuteOut
    result: Results | None
    callback_url: str | None = None
    webhook: WebhookOut | None = Field(None, description="the webhook's delivery record")
    history: list[JudgedOut] = Field(default_factory=list, description="earlier judgements "
                                     "of a rejudged task, oldest first")


class TaskEnvelope(BaseModel):
    data: TaskOut


class Links(BaseModel):
    next: str | None = Field(description="the next page, or null on the last")


class TaskPage(BaseModel):
    data: list[TaskSummary]
    links: Links


class BatchOutcome(BaseModel):
    status: int = Field(description="201 created, 200 identical existing, or an error status")
    id: str | None
    data: TaskSummary | None
    errors: list[ErrorItem] | None


class BatchEnvelope(BaseModel):
    data: list[BatchOutcome]


class Accepted(BaseModel):
    data: dict[str, str]


class ErrorItem(BaseModel):
    status: str = Field(examples=["404"])
    title: str
    detail: str


class ErrorEnvelope(BaseModel):
    errors: list[ErrorItem]


class LanguageOut(BaseModel):
    name: str = Field(examples=["cpp"])
    version: str = Field(description="version strings seen on executors, joined by ' | '")
    executors: int = Field(description="live executors that have it")
    source_file: str = Field("", description="the program's file name (main.c, Main.java…)")
    offered_by: list[str] = Field(default_factory=list,
                                  description="their names (a task naming a language none "
                                  "offers is refused, 422)")


class FileOut(BaseModel):
    path: str
    size: int = Field(description="bytes in the archive")
    content: str = Field(description="text, or base64 when encoding is base64; at most "
                         "256 KiB shown")
    encoding: Literal["text", "base64"]
    cut: bool = Field(description="content holds only the first 256 KiB")


class FilesOut(BaseModel):
    id: str
    part: Literal["compile", "execute"]
    files: list[FileOut]


class CaseAsked(BaseModel):
    input: str
    standard: str
    weight: int
    cut: bool = Field(description="input or standard holds only the first 256 KiB")


class CaseList(BaseModel):
    data: list[CaseAsked]


class FilesEnvelope(BaseModel):
    data: FilesOut


class LimitsOut(BaseModel):
    default_timeout: float = Field(description="wall seconds of a step asking 0/none")
    max_timeout: float = Field(description="most wall seconds of any step (larger: capped)")
    default_cpu_limit: float = Field(description="CPU seconds of an execute step asking none")
    max_cpu_limit: float
    max_memory_limit: int
    max_output_limit: int
    max_cases: int
    max_task_size: int


class LimitsEnvelope(BaseModel):
    data: LimitsOut


class LanguageList(BaseModel):
    data: list[LanguageOut]


BatchOutcome.model_rebuild()


# ----------------------------------------------------------------------------- executors


class TaskUsageOut(BaseModel):
    id: str = Field(description="the task's seed id")
    status: StatusName
    cpu_time: float | None = Field(description="CPU seconds of its running step so far")
    memory: int | None = Field(description="bytes its running step uses now")
    pids: int | None = Field(description="processes of its running step now")
    pid: int | None = Field(None, description="its running step's process on the executor "
                            "host")


class ExecutorOut(BaseModel):
    name: str
    slots: int
    vacant: int
    version: str
    load: list[float] = Field(description="host load averages over 1, 5 and 15 minutes")
    memory_total: int = Field(description="host memory, bytes")
    memory_available: int
    tasks: list[TaskUsageOut]
    report_time: str = Field(description="when these statistics were reported")


class ExecutorList(BaseModel):
    data: list[ExecutorOut]


class ExecutorEnvelope(BaseModel):
    data: ExecutorOut
