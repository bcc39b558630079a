"""API v2 models ↔ the domain model. Pure; raises InvalidInput for what validation of the
shapes cannot see (base64, file names)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict
from typing import Any

from khala.errors import InvalidInput
from khala.files.refs import FileRef
from khala.images.model import parse_image
from khala.model import (
    Case,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    Group,
    GroupPolicy,
    ImageRef,
    Interactor,
    Judgement,
    OutputFile,
    ProblemRef,
    Reason,
    StepOptions,
    StepReport,
    Task,
    TaskBrief,
)
from khala.rules.seconds import whole
from khala.taskjson.base import STATUS_NAMES, File
from khala.taskjson.judging import (
    CaseResultOut,
    CheckerOut,
    CompareIn,
    CompareOut,
    GroupOut,
    GroupResultOut,
    InteractorIn,
    InteractorOut,
    JudgedOut,
    JudgementOut,
    OutputFileOut,
    ProblemRefOut,
)
from khala.taskjson.models import (
    CompileOut,
    ExecuteOut,
    ExecutorOut,
    ExitStatus,
    ImageRefOut,
    Results,
    Rusage,
    StepOptionsIn,
    StepResult,
    TaskIn,
    TaskOut,
    TaskSummary,
    WebhookOut,
)
from khala.zipcheck import make_zip_files

KHALA_PREFIX = "[khala] "


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{what} is not valid base64") from exc


def _archive(files: list[File], zip_b64: str | None, what: str) -> bytes:
    if zip_b64 is not None and files:
        raise InvalidInput(f"{what}: give either files or zip, not both")
    if zip_b64 is not None:
        return _b64(zip_b64, f"{what}.zip")
    entries = [
        (f.path, f.content.encode() if f.encoding == "text" else _b64(f.content, f.path))
        for f in files
    ]
    return make_zip_files(entries) if entries else b""


def _compare(spec: CompareIn | None) -> Compare | None:
    if spec is None:
        return None
    checker = spec.checker
    return Compare(mode=CompareMode(spec.mode), abs_tol=spec.abs_tol, rel_tol=spec.rel_tol,
                   checker=None if checker is None else Checker(str(checker.language.value),
                                                                checker.source))


def _interactor(spec: InteractorIn | None) -> Interactor | None:
    if spec is None:
        return None
    return Interactor(language=str(spec.language.value), source=spec.source,
                      timeout=spec.timeout, cpu_limit=spec.cpu_limit,
                      memory_limit=spec.memory_limit)


def _seconds(value: float | None) -> float | None:
    return None if value is None else whole(value)


def task_from_model(body: TaskIn, key: str | None) -> Task:
    """The task a body asks for. Raises InvalidInput for a task with nothing to run (no
    execute command and no language)."""
    c, e = body.compile, body.execute
    if c.language is None and not e.command.strip():
        raise InvalidInput("execute.command is required (or give compile.language)")
    return Task(
        user=body.user,
        priority=body.priority,
        key=key,
        callback_url=body.callback_url,
        compile=Compile(
            source=_archive(c.files, c.zip, "compile"),
            command=c.command,
            timeout=whole(c.timeout),
            memory_limit=c.memory_limit,
            language=c.language or "",
            options=options_of(c),
            image=None if c.image is None else parse_image(c.image),
        ),
        execute=Execute(
            input=e.input,
            data=_archive(e.files, e.zip, "execute"),
            command=e.command,
            timeout=whole(e.timeout),
            standard=e.standard,
            memory_limit=e.memory_limit,
            cpu_limit=_seconds(e.cpu_limit),
            pids_limit=e.pids_limit,
            output_limit=e.output_limit,
            disk_limit=e.disk_limit,
            cases=[Case(**{**case.model_dump(), "group": case.group or "",
                           "timeout": _seconds(case.timeout),
                           "cpu_limit": _seconds(case.cpu_limit)}) for case in e.cases],
            compare=_compare(e.compare),
            stop_on_failure=e.stop_on_failure,
            interactive=e.interactive,
            groups=[Group(name=g.name, points=g.points, policy=GroupPolicy(g.policy),
                          deps=list(g.deps)) for g in e.groups],
            skip_failed_groups=e.skip_failed_groups,
            interactor=_interactor(e.interactor),
            outputs=list(e.outputs),
            problem=None if e.problem is None else ProblemRef(id=e.problem.id,
                                                              version=e.problem.version),
            options=options_of(e),
            image=None if e.image is None else parse_image(e.image),
        ),
    )


def options_of(step: StepOptionsIn) -> StepOptions:
    return StepOptions(env=dict(step.env), workdir=step.workdir, cpu_rate=step.cpu_rate,
                       network=step.network, hostname=step.hostname)


def image_out(ref: ImageRef | None) -> ImageRefOut | None:
    if ref is None:
        return None
    return ImageRefOut(name=ref.name, version=ref.version, resolved=ref.resolved,
                       sha256=ref.sha256)


def status_name(code: int) -> str:
    return STATUS_NAMES[code].value if 0 <= code < len(STATUS_NAMES) else "unknown_error"


def summary_of(brief: TaskBrief | Task) -> TaskSummary:
    return TaskSummary(
        id=brief.key or brief.id,
        seed_id=brief.id,
        user=brief.user,
        status=status_name(int(brief.status)),  # type: ignore[arg-type]
        status_code=int(brief.status),
        done=brief.done,
        executor=brief.executor or None,
        add_time=brief.add_time,
        report_time=brief.report_time or None,
    )


def step_of(report: StepReport | None, stderr_bytes: bytes) -> StepResult | None:
    if report is None:
        return None
    stderr = stderr_bytes.decode("utf-8", errors="replace")
    ran = report.reason != Reason.INTERNAL_ERROR
    measured = report.rusage
    errors = [line[len(KHALA_PREFIX):] for line in stderr.splitlines()
              if line.startswith(KHALA_PREFIX)]
    return StepResult(
        status=ExitStatus(
            exit_code=report.exit_code,
            signum=report.signal,
            core_dump=bool(report.core_dump),
        ) if ran and (report.exit_code is not None or report.signal is not None) else None,
        rusage=Rusage(utime=measured.utime if measured else None,
                      stime=measured.stime if measured else None,
                      cpu_time=report.time, maxrss=report.memory) if ran else None,
        pid=report.pid,
        wall_time=report.wall_time,
        reason=str(report.reason),
        errors=errors,
    )


def task_out(task: Task) -> TaskOut:
    c, e, r = task.compile, task.execute, task.result
    results = None
    if task.done and r is not None:
        results = Results(
            compile=step_of(r.compile_report, r.compile_error),
            execute=step_of(r.execute_report, r.execute_error),
            judgement=judgement_out(r.judgement),
            files=files_out(r.files),
        )
    return TaskOut(
        **summary_of(task).model_dump(),
        priority=task.priority,
        compile=CompileOut(
            command=c.command, timeout=c.timeout, memory_limit=c.memory_limit,
            has_source=bool(c.source), language=c.language or None, image=image_out(c.image),
            **asdict(c.options),
        ),
        execute=ExecuteOut(
            command=e.command, input=e.input, timeout=e.timeout, standard=e.standard,
            memory_limit=e.memory_limit, cpu_limit=e.cpu_limit, pids_limit=e.pids_limit,
            output_limit=e.output_limit, disk_limit=e.disk_limit, has_data=bool(e.data),
            cases=len(e.cases), compare=compare_out(e.compare),
            stop_on_failure=e.stop_on_failure, interactive=e.interactive,
            groups=[GroupOut(name=g.name, points=number(g.points), policy=str(g.policy),
                             deps=list(g.deps)) for g in e.groups],
            skip_failed_groups=e.skip_failed_groups,
            interactor=None if e.interactor is None else InteractorOut(
                language=e.interactor.language, source=e.interactor.source,
                timeout=e.interactor.timeout, cpu_limit=e.interactor.cpu_limit,
                memory_limit=e.interactor.memory_limit),
            outputs=list(e.outputs),
            problem=None if e.problem is None else ProblemRefOut(
                id=e.problem.id, version=e.problem.version, judged=e.problem.judged,
                spec=e.problem.spec),
            **asdict(e.options),
            image=image_out(e.image),
        ),
        result=results,
        callback_url=task.callback_url,
        webhook=None if task.webhook is None else WebhookOut(
            **{**asdict(task.webhook), "delivered_at": task.webhook.delivered_at or None}),
        history=[JudgedOut(at=h.at, rejudge=h.rejudge, version=h.version,
                           status=status_name(int(h.status)),  # type: ignore[arg-type]
                           executor=h.executor, report_time=h.report_time,
                           judgement=judgement_out(h.judgement)) for h in task.history],
    )


def compare_out(spec: Compare | None) -> CompareOut | None:
    if spec is None:
        return None
    checker = spec.checker
    return CompareOut(mode=spec.mode.value, abs_tol=spec.abs_tol, rel_tol=spec.rel_tol,
                      checker=None if checker is None else CheckerOut(
                          language=checker.language, source=checker.source))


def number(value: float) -> int | float:
    """A score as API v2 shows it: an integer when whole."""
    return int(value) if float(value).is_integer() else value


def files_out(files: list[OutputFile]) -> list[OutputFileOut]:
    return [OutputFileOut(name=f.name, size=f.size,
                    content=None if f.error else base64.b64encode(f.content).decode("ascii"),
                    error=f.error or None) for f in files]


def judgement_out(judgement: Judgement | None) -> JudgementOut | None:
    if judgement is None:
        return None
    j = judgement
    return JudgementOut(
        verdict=str(j.verdict), score=number(j.score), max_score=number(j.max_score),
        language=j.language,
        compiles=j.compiles, cache_hit=j.cache_hit, message=j.message,
        cases=[CaseResultOut(verdict=str(c.verdict), weight=c.weight, points=number(c.points),
                             time=c.time, wall_time=c.wall_time, memory=c.memory,
                             exit_code=c.exit_code, signum=c.signal, output=c.output,
                             error=c.error, message=c.message, files=files_out(c.files))
               for c in j.cases],
        groups=[GroupResultOut(name=g.name, verdict=str(g.verdict), score=number(g.score),
                               max_score=number(g.max_score), skipped=g.skipped,
                               cases=list(g.cases),
                               message=g.message) for g in j.groups])


def output_bytes(task: Task, step: str, stream: str) -> bytes:
    """The captured bytes of one stream (compile|execute × stdout|stderr); b"" before the end.
    Outputs are bytes once the store keeps them so; text is sent as UTF-8 meanwhile."""
    if task.result is None:
        return b""
    name = f"{step}_{'output' if stream == 'stdout' else 'error'}"
    value: bytes | str = getattr(task.result, name)
    return value if isinstance(value, bytes) else value.encode("utf-8")


def stored_output(task: Task, step: str, stream: str) -> FileRef | None:
    """The stored file holding one stream whole, when the result kept it so."""
    if task.result is None:
        return None
    return task.result.stored.get(f"{step}_{'output' if stream == 'stdout' else 'error'}")


def executor_out(stats: dict[str, Any]) -> dict[str, Any]:
    """An executor's statistics as API v2 shows them (ExecutorOut)."""
    tasks = [{**t, "status": STATUS_NAMES[t["status"]] if 0 <= t["status"] < len(STATUS_NAMES)
              else "unknown_error"} for t in stats.get("tasks", [])]
    return ExecutorOut(**{**stats, "tasks": tasks}).model_dump(mode="json")
