"""The shared ground of API v2's typed models (khala/taskjson/models.py, judging.py): id
patterns, numbers and seconds, task statuses, the strict input base, files and language
names."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from khala.judging.presets import PRESETS
from khala.model import INT_MAX
from khala.rules.limits import BYTES_LIMIT_MAX as BYTES_MAX

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
GROUP_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

TaskId = Annotated[str, Field(pattern=ID_PATTERN, examples=["sum-42"])]
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


class File(Strict):
    """One file of the work directory (compile) or of data/ (execute)."""

    path: str = Field(min_length=1, max_length=4096, examples=["main.c"])
    content: str = Field(description="the file's text, or base64 when encoding is base64")
    encoding: Literal["text", "base64"] = "text"


LanguageName = StrEnum("LanguageName", {n: n for n in PRESETS})  # type: ignore[misc]

__all__ = ["BYTES_MAX", "ID_PATTERN", "GROUP_PATTERN", "STATUS_NAMES", "File", "LanguageName",
           "Number", "PositiveSeconds", "Seconds", "StatusName", "Strict", "TaskId"]
