"""The shapes of an executor's report: a finished task (id, status, result), a running one
(id, status, executor) and the answer (cancelled ids, assigned tasks, signals). Decoding what
executors hand in is lenient: a result is never lost over a malformed text field."""

from __future__ import annotations

from typing import Any

from khala import model
from khala.errors import InvalidInput
from khala.model import Assignment, Code, Result, Status, Task, TaskBrief
from khala.rpc import judicator_thrift as T
from khala.rpc.convert.results import result_from_thrift, result_to_thrift
from khala.rpc.convert.tasks import task_from_thrift, task_to_thrift
from khala.rpc.convert.text import Inflation


def completed_to_thrift(task: Task) -> Any:
    """A finished task as an executor hands it in: id, done, status, executor, result only."""
    return T.Task(id=task.id, done=task.done, status=int(task.status), executor=task.executor,
                  result=result_to_thrift(task.result))


def completed_from_thrift(task: Any, budget: Inflation | None = None) -> Task:
    """The parts of a handed-in task that count: id, status, result. A result that cannot be
    decoded becomes Unknown error with the reason in its compile error."""
    try:
        result = result_from_thrift(task.result, budget) or Result()
    except InvalidInput as exc:  # TooLarge included
        result = Result(compile_error=f"[khala] result could not be decoded: {exc}".encode())
        return Task(id=task.id, status=Status.UNKNOWN_ERROR, result=result)
    return Task(id=task.id, status=model.status_of(task.status), result=result)


def executing_to_thrift(brief: TaskBrief) -> Any:
    """A running task as an executor lists it: id, status, executor only."""
    return T.TaskBrief(id=brief.id, status=int(brief.status), executor=brief.executor)


def assignment_to_thrift(assignment: Assignment) -> Any:
    """The body of an OK ReportReturn: cancelled ids as id-only briefs, assigned whole tasks."""
    return T.ReportReturn(
        result=Code.OK,
        cancel=[T.TaskBrief(id=i) for i in assignment.cancel],
        assign=[task_to_thrift(t) for t in assignment.assign],
        signals=[T.Signal(id=i, signum=n) for i, n in assignment.signals],
    )


def assignment_from_thrift(reply: Any, judicator: str = "") -> Assignment:
    """An OK ReportReturn. An assigned task that cannot be decoded is not dropped: it lands in
    `undecodable` with the reason, for the executor to hand back as failed."""
    assignment = Assignment(
        cancel=[b.id for b in reply.cancel or [] if b is not None], judicator=judicator,
        signals=[(s.id, int(s.signum)) for s in reply.signals or []
                 if s is not None and s.id and s.signum is not None],
    )
    for wire in reply.assign or []:
        try:
            assignment.assign.append(task_from_thrift(wire))
        except Exception as exc:  # any malformed part: the task still comes back, as failed
            assignment.undecodable.append((wire.id, str(exc)))
    return assignment
