"""The typed models of API v2 (pydantic). The routes validate with them and the OpenAPI
document is generated from them, so the spec cannot drift from the code."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

INT_MAX = 2147483647
BYTES_MAX = 2**62
ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

TaskId = Annotated[str, Field(pattern=ID_PATTERN, examples=["sum-42"])]


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
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- input


class File(Strict):
    """One file of the work directory (compile) or of data/ (execute)."""

    path: str = Field(min_length=1, max_length=4096, examples=["main.c"])
    content: str = Field(description="the file's text, or base64 when encoding is base64")
    encoding: Literal["text", "base64"] = "text"


class CompileIn(Strict):
    command: str = Field(description="run with bash in the work directory",
                         examples=["gcc -O2 -o main main.c"])
    timeout: int = Field(0, ge=0, le=INT_MAX, description="wall seconds, 0 = none")
    memory_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes")
    files: list[File] = Field(default_factory=list, max_length=10000,
                              description="source files, or give `zip`")
    zip: str | None = Field(None, description="base64 of a zip of the source files")


class ExecuteIn(Strict):
    command: str = Field(examples=["./main"])
    input: str = Field("", description="fed to the command's stdin")
    timeout: int = Field(0, ge=0, le=INT_MAX, description="wall seconds, 0 = none")
    standard: str = Field("", description="expected output; not used by Khala")
    memory_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes")
    cpu_limit: int | None = Field(None, ge=1, le=INT_MAX, description="CPU seconds")
    pids_limit: int | None = Field(None, ge=1, le=INT_MAX)
    output_limit: int | None = Field(None, ge=1, le=BYTES_MAX, description="bytes per stream")
    files: list[File] = Field(default_factory=list, max_length=10000,
                              description="data files (placed in data/), or give `zip`")
    zip: str | None = Field(None, description="base64 of a zip of the data files")


class TaskIn(Strict):
    """A task to run: a compile step, then an execute step."""

    user: int = Field(0, ge=0, le=INT_MAX)
    compile: CompileIn
    execute: ExecuteIn


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
    utime: float | None = Field(description="user CPU seconds; null: not measured apart")
    stime: float | None = Field(description="system CPU seconds; null: not measured apart")
    cpu_time: float = Field(description="user + system CPU seconds")
    maxrss: int = Field(description="peak memory, bytes")


class StepResult(BaseModel):
    status: ExitStatus | None
    rusage: Rusage | None
    wall_time: float = Field(description="seconds")
    reason: str = Field(examples=["ok", "nonzero_exit", "time_limit", "memory_limit"])
    errors: list[str] = Field(description="Khala's own problems running the step")


class Results(BaseModel):
    compile: StepResult | None
    execute: StepResult | None


class CompileOut(BaseModel):
    command: str
    timeout: int
    memory_limit: int | None
    has_source: bool


class ExecuteOut(BaseModel):
    command: str
    input: str
    timeout: int
    standard: str
    memory_limit: int | None
    cpu_limit: int | None
    pids_limit: int | None
    output_limit: int | None
    has_data: bool


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


class TaskOut(TaskSummary):
    compile: CompileOut
    execute: ExecuteOut
    result: Results | None


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


BatchOutcome.model_rebuild()
