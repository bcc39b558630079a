"""API v2 routes a judge's front end needs besides the task itself: the files a task was
given (`GET /api/v2/tasks/{id}/files/{part}`: its source or data, unpacked, so a page can show
the source), its test cases (`GET /api/v2/tasks/{id}/cases`: to show a failed case's
difference), the limits policy a task runs under (`GET /api/v2/limits`: the defaults of 0/none)
and the live languages with the executors offering each. A mixin of TaskViews (views.py)."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

from flask import Response, jsonify

from khala.config import GatewaySettings
from khala.gateway.v2.errors import ApiError
from khala.judging.presets import PRESETS
from khala.model import Case, Language
from khala.streams.log import utf8_split
from khala.taskjson.models import CaseList, FilesEnvelope, LimitsEnvelope

MAX_FILES = 200  # files listed per part
MAX_SHOWN = 256 * 1024  # bytes of each file's content sent; the rest is cut (`cut`: true)


def unpack_files(archive: bytes) -> list[dict[str, Any]]:
    """The files of a task's zip, for showing: path, size, text content (or base64 for a file
    that is not UTF-8), cut to MAX_SHOWN bytes. The zip passed the policy at submit; reading is
    still bounded per file and in count."""
    if not archive:
        return []
    try:
        zipped = zipfile.ZipFile(io.BytesIO(archive))
        infos = [i for i in zipped.infolist() if not i.is_dir()][:MAX_FILES]
        files = []
        for info in infos:
            with zipped.open(info) as fh:
                data = fh.read(MAX_SHOWN + 1)
            files.append(_file(info.filename, info.file_size, data))
        return files
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise ApiError(422, f"the task's archive cannot be read: {exc}") from exc


def _file(path: str, size: int, data: bytes) -> dict[str, Any]:
    cut = len(data) > MAX_SHOWN
    data = data[:MAX_SHOWN]
    if cut:
        data, _ = utf8_split(data)  # a text cut in a character stays text
    try:
        content, encoding = data.decode("utf-8"), "text"
    except UnicodeDecodeError:
        content, encoding = base64.b64encode(data).decode(), "base64"
    return {"path": path, "size": size, "content": content, "encoding": encoding, "cut": cut}


def language_out(language: Language) -> dict[str, Any]:
    """A live language as GET /api/v2/languages lists it."""
    preset = PRESETS.get(language.name)
    source = language.source or (preset.source if preset is not None else "")
    return {"name": language.name, "version": language.version,
            "image": language.image or None, "executors": language.executors,
            "source_file": source, "time_factor": language.time_factor,
            "offered_by": language.executor_names}


def limits_of(settings: GatewaySettings) -> dict[str, Any]:
    """The limits policy as a client needs it to fill a form (khala/rules/seconds.py)."""
    s = settings
    return {"default_timeout": s.default_timeout, "max_timeout": s.max_timeout,
            "default_cpu_limit": s.default_cpu_limit, "max_cpu_limit": s.max_cpu_limit,
            "max_memory_limit": s.max_memory_limit, "max_output_limit": s.max_output_limit,
            "max_cases": s.max_cases, "max_task_size": s.max_task_size}


class SourceViews:
    """The views; TaskViews gives `settings` and `client` (whose refusals, such as NotFound,
    the blueprint answers)."""

    settings: GatewaySettings
    client: Any

    def files(self, id: str, part: str) -> Response:  # noqa: A002 - route name
        if part not in ("compile", "execute"):
            raise ApiError(404, "files are compile (the source) or execute (the data)")
        task = self.client.find(id)
        archive = task.compile.source if part == "compile" else task.execute.data
        return jsonify({"data": {"id": task.key or task.id, "part": part,
                                 "files": unpack_files(archive)}})

    def cases(self, id: str) -> Response:  # noqa: A002 - route name
        """The task's test cases as asked (input, expected output, weight), texts cut to
        MAX_SHOWN characters: what a page needs to show a failed case's difference. A task
        without cases has one: its input and standard."""
        e = self.client.find(id).execute
        cases = e.cases or [Case(input=e.input, standard=e.standard)]
        return jsonify({"data": [
            {"input": c.input[:MAX_SHOWN], "standard": c.standard[:MAX_SHOWN],
             "weight": c.weight, "cut": max(len(c.input), len(c.standard)) > MAX_SHOWN}
            for c in cases]})

    def limits(self) -> Response:
        return jsonify({"data": limits_of(self.settings)})


def source_routes(route: Any, error: Any, ref: dict[str, Any]) -> list[Any]:
    """The routes of these views, for the route table of spec.py (`route`: its Route)."""
    part = {"type": "string", "enum": ["compile", "execute"]}
    return [
        route("get", "/api/v2/tasks/{id}/files/{part}", "files",
              "The files a task was given (compile: its source; execute: its data), unpacked",
              path_params={**ref, "part": part},
              responses={200: (FilesEnvelope, "the files"), 404: (error, "no such task")}),
        route("get", "/api/v2/tasks/{id}/cases", "cases",
              "A task's test cases as asked (input, expected output, weight; texts cut)",
              path_params=ref, responses={200: (CaseList, "the cases"),
                                          404: (error, "no such task")}),
        route("get", "/api/v2/limits", "limits",
              "The limits policy: defaults of a task asking 0/none, and the maxima",
              responses={200: (LimitsEnvelope, "the policy")}),
    ]

