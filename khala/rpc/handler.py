"""The Judicator Thrift handler: wire structs in, one domain call, wire structs out.

thriftpy2's processor calls these methods with the decoded arguments in IDL order (null for what
an old client does not send). Each converts its arguments (convert.py), calls the judicator's
domain service (`Service` below) and turns the outcome into the wire answer:

- a value → the reply with result OK;
- a domain refusal the service raises (`convert.REFUSALS`) → its ReturnCode (the class's
  `code`), the reply's other fields null/empty;
- anything else (store down, a bug) → ERROR, logged (Unavailable in one line, anything else
  with its trace), so one failing call never breaks the
  connection. `ping` and `wake` cannot fail and answer OK.

A new method: add it to the IDL, to `Service` and the judicator's service on domain types, and
here as a few lines with `@_answers(<its empty reply>)`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from khala.errors import Unavailable
from khala.model import (
    Assignment,
    Code,
    ExecutorInfo,
    Language,
    SearchQuery,
    Task,
    TaskBrief,
)
from khala.rpc import convert
from khala.rpc import judicator_thrift as T
from khala.rpc.handler_jobs import JobsHandler
from khala.rpc.handler_v2 import TaskApiHandler
from khala.rpc.ops import OpsHandler

log = logging.getLogger(__name__)


class Service(Protocol):
    """The judicator's API on domain types (khala.judicator.service.JudicatorService)."""

    def ping(self) -> None: ...

    def add(self, task: Task) -> str: ...

    def cancel(self, id: str) -> None: ...  # noqa: A002

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]: ...

    def get(self, id: str) -> Task: ...  # noqa: A002

    def executors(self) -> list[ExecutorInfo]: ...

    def report(
        self,
        executor: str,
        complete: list[Task],
        executing: list[TaskBrief],
        vacant: int,
        wait_ms: int,
        languages: list[Language],
    ) -> Assignment: ...

    def wake(self, executor: str, draining: bool = False) -> None: ...

    def leave(self, executor: str) -> None: ...

    def hand_in(self, executor: str, complete: list[Task]) -> None: ...

    def languages(self) -> list[Language]: ...


def _answers(empty: Callable[[int], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Answer a refusal with its code and anything unexpected with ERROR, each as `empty(code)`:
    the method's reply carrying that code and no payload."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any) -> Any:
            try:
                return method(*args)
            except convert.REFUSALS as exc:
                log.info("%s refused: %s", method.__name__, exc)
                return empty(exc.code)
            except Unavailable as exc:  # the store down or a record held: expected, no trace
                log.warning("judicator %s: %s; the caller tries again", method.__name__, exc)
                return empty(Code.ERROR)
            except Exception:
                log.exception("judicator %s failed", method.__name__)
                return empty(Code.ERROR)

        return wrapper

    return decorate


class JudicatorHandler(TaskApiHandler, JobsHandler, OpsHandler):
    """The object thriftpy2's processor serves: one method per IDL method (the API v2 ones in
    handler_v2.py)."""

    def __init__(
        self, service: Service, max_task: int = convert.MAX_TEXT, max_report: int = convert.MAX_TEXT
    ) -> None:
        self.service = service
        self.max_task = max_task  # bytes the texts of one added task may inflate to, together
        self.max_report = max_report  # bytes the results of one report may inflate to, together

    def ping(self) -> int:
        self.service.ping()
        return Code.OK

    @_answers(lambda code: T.AddReturn(result=code, id=None))
    def add(self, task: Any) -> Any:
        task_id = self.service.add(convert.task_from_thrift(task, self.max_task))
        return T.AddReturn(result=Code.OK, id=task_id)

    @_answers(lambda code: code)
    def cancel(self, id: str) -> int:  # noqa: A002 - wire name
        self.service.cancel(id)
        return Code.OK

    @_answers(lambda code: T.SearchReturn(result=code, pages=0, tasks=[]))
    def search(
        self,
        id: str | None,  # noqa: A002
        user: int | None,
        start_time: str | None,
        end_time: str | None,
        old_to_new: bool | None,
        limit: int | None,
        page: int | None,
    ) -> Any:
        query = convert.search_from_wire(id, user, start_time, end_time, old_to_new, limit, page)
        pages, briefs = self.service.search(query)
        return T.SearchReturn(
            result=Code.OK, pages=pages, tasks=[convert.brief_to_thrift(b) for b in briefs]
        )

    @_answers(lambda code: T.GetReturn(result=code, task=None))
    def get(self, id: str) -> Any:  # noqa: A002
        return T.GetReturn(result=Code.OK, task=convert.task_to_thrift(self.service.get(id)))

    @_answers(lambda code: T.ExecutorsReturn(result=code, executors=[]))
    def executors(self) -> Any:
        infos = self.service.executors()
        return T.ExecutorsReturn(
            result=Code.OK, executors=[convert.executor_to_thrift(i) for i in infos]
        )

    @_answers(lambda code: T.ReportReturn(result=code, cancel=[], assign=[]))
    def report(
        self,
        executor: str | None,
        complete: list[Any] | None,
        executing: list[Any] | None,
        vacant: int | None,
        wait_ms: int | None = None,
        stats: Any = None,
        languages: list[Any] | None = None,
    ) -> Any:
        self.record_stats(executor, stats)  # operations extension (khala/rpc/ops.py)
        budget = convert.Inflation(self.max_report)  # shared by every result in this report
        finished = [
            convert.completed_from_thrift(t, budget)
            for t in complete or []
            if t is not None and t.id
        ]
        running = [convert.brief_from_thrift(b) for b in executing or [] if b is not None and b.id]
        offered = [convert.language_from_thrift(x) for x in languages or [] if x is not None]
        assignment = self.service.report(
            executor or "", finished, running, vacant or 0, wait_ms or 0, offered
        )
        return convert.assignment_to_thrift(assignment)

    @_answers(lambda code: T.LanguagesReturn(result=code, languages=[]))
    def languages(self) -> Any:
        found = self.service.languages()
        return T.LanguagesReturn(
            result=Code.OK, languages=[convert.language_to_thrift(x) for x in found]
        )

    def wake(self, executor: str | None, draining: bool | None = None) -> int:
        self.service.wake(executor or "", bool(draining))
        return Code.OK

    @_answers(lambda code: code)
    def leave(self, executor: str | None) -> int:
        self.service.leave(executor or "")
        return Code.OK

    @_answers(lambda code: code)
    def hand_in(self, executor: str | None, complete: list[Any] | None) -> int:
        budget = convert.Inflation(self.max_report)  # as a report's results
        finished = [convert.completed_from_thrift(t, budget) for t in complete or []
                    if t is not None and t.id]
        self.service.hand_in(executor or "", finished)
        return Code.OK
