"""The typed models of API v2 (pydantic): a task as it is asked for and as it is answered, and
the cluster's answers (languages, limits, files, executors). The routes validate with them and
the OpenAPI document is generated from them, so the spec cannot drift from the code. Their
shared ground is khala/taskjson/base.py; judging's parts (cases, groups, checkers,
interactors, judgements) are khala/taskjson/judging.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from khala.images.model import IMAGE_PATTERN
from khala.judging.presets import LANGUAGE_PATTERN
from khala.model import INT_MAX, PRIORITY_MAX, PRIORITY_MIN
from khala.taskjson.base import (
    BYTES_MAX,
    File,
    PositiveSeconds,
    Seconds,
    StatusName,
    Strict,
    TaskId,
)
from khala.taskjson.judging import (
    CaseIn,
    CompareIn,
    CompareOut,
    GroupIn,
    GroupOut,
    InteractorIn,
    InteractorOut,
    JudgedOut,
    JudgementOut,
    OutputFileOut,
    ProblemRefIn,
    ProblemRefOut,
)

MAX_OUTPUTS = 64  # files a task may ask back (khala/judging/validate.py holds the same bound)

ImageName = Annotated[str, Field(pattern=IMAGE_PATTERN, examples=["debian-gcc", "busybox:2"])]
IMAGE_WORDS = ("the image the step runs in (GET /api/v2/images): its root filesystem, "
               "read-only, instead of the executor's; name = its latest version when submitted")

# ----------------------------------------------------------------------------- input


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")]


class StepOptionsIn(Strict):
    """What a step runs with besides its limits (docs/sandbox.md); the operator's
    max_env_bytes and max_cpu_rate bound them (422 beyond)."""

    env: dict[EnvName, str] = Field(
        default_factory=dict, examples=[{"MODE": "fast"}],
        description="environment variables over Khala's own (PATH, HOME, LANG…); names of "
        "letters, digits and _; NAME=value bytes in all at most max_env_bytes (32 KiB)")
    workdir: str = Field("", max_length=1024, examples=["src"], description="the working "
                         "directory inside the work area: relative, or under /work; made if "
                         "missing; outside it is refused")
    cpu_rate: float | None = Field(
        None, ge=0.01, allow_inf_nan=False, examples=[0.5],
        description="CPUs the step may use at once (cgroup CPU bandwidth; 0.5 = half of one); "
        "none = no rate")
    network: bool = Field(False, description="a network that reaches the internet, never this "
                          "host nor denied ranges (docs/security.md); only on executors whose "
                          "operator allows it, else the step does not run")
    hostname: str = Field("", max_length=64, examples=["web"], description="the step's host "
                          "name in its UTS namespace (RFC 1123 labels, dots between); none = "
                          "khala")


class CompileIn(StepOptionsIn):
    command: str = Field("", description="run with bash in the work directory; empty with a "
                         "language", examples=["gcc -O2 -o main main.c"])
    language: str | None = Field(
        None, pattern=LANGUAGE_PATTERN, description="a preset filling both commands (GET "
        "/api/v2/languages): the host's, or with `image` one the image carries")
    timeout: Seconds = Field(0, description="wall seconds (1.5 allowed); 0 = the operator's "
                             "default; capped to the operator's maximum")
    memory_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes")
    files: list[File] = Field(default_factory=list, max_length=10000,
                              description="source files, or give `zip`")
    zip: str | None = Field(None, description="base64 of a zip of the source files")
    image: ImageName | None = Field(None, description=IMAGE_WORDS)


class ExecuteIn(StepOptionsIn):
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


class Results(BaseModel):
    compile: StepResult | None
    execute: StepResult | None = Field(description="judged tasks: the first case")
    judgement: JudgementOut | None = None
    files: list[OutputFileOut] = Field(default_factory=list,
                                 description="execute.outputs of a task that is not judged")


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
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str = ""
    cpu_rate: float | None = None
    network: bool = False
    hostname: str = ""
    image: ImageRefOut | None = None


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
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str = ""
    cpu_rate: float | None = None
    network: bool = False
    hostname: str = ""
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
    image: str | None = Field(None, examples=["judge:1"], description="the image it is offered "
                              "in (its presets travel with it); null: the executors' hosts")
    source_file: str = Field("", description="the program's file name (main.c, Main.java…)")
    time_factor: float = Field(1.0, description="a case's CPU and wall limits are multiplied by "
                               "it")
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
