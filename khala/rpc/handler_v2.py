"""The thin Thrift side of the API v2 judicator methods: wire structs in, domain calls on
`self.service.tasks` (khala.judicator.tasks.TaskApi), wire structs out. Mixed into the judicator's
Thrift handler; every method answers ERROR instead of raising."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from khala.errors import InvalidInput
from khala.model import Code, PageQuery
from khala.rpc import convert
from khala.rpc import judicator_thrift as T

log = logging.getLogger(__name__)


def _guard(failure: Callable[[], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except Exception:
                log.exception("judicator %s failed", method.__name__)
                return failure()

        return wrapper

    return decorate


def page_query_from_thrift(query: Any) -> PageQuery:
    if query is None:
        return PageQuery()
    return PageQuery(
        user=query.user,
        statuses=[int(s) for s in query.statuses or []],
        start_time=query.start_time or None,
        end_time=query.end_time or None,
        old_to_new=bool(query.old_to_new),
        limit=query.limit if query.limit is not None else 100,
        after_time=query.after_time or None,
        after_id=query.after_id or None,
    )


def page_query_to_thrift(query: PageQuery) -> Any:
    return T.TaskQuery(
        user=query.user,
        statuses=list(query.statuses),
        start_time=query.start_time,
        end_time=query.end_time,
        old_to_new=query.old_to_new,
        limit=query.limit,
        after_time=query.after_time,
        after_id=query.after_id,
    )


class TaskApiHandler:
    """API v2 methods of the Judicator service."""

    service: Any  # the judicator's service; .tasks is its khala.judicator.tasks.TaskApi

    @_guard(lambda: [])
    def submit(self, tasks: list[Any] | None) -> list[Any]:
        decoded: list[Any] = []
        for wire in tasks or []:
            try:
                decoded.append(convert.task_from_thrift(wire))
            except InvalidInput as exc:
                decoded.append(exc)
        good = [t for t in decoded if not isinstance(t, Exception)]
        outcomes = iter(self.service.tasks.submit(good))
        answers = []
        for item in decoded:
            if isinstance(item, Exception):
                answers.append(T.SubmitReturn(Code.INVALID_INPUT, "", False, str(item)))
            else:
                o = next(outcomes)
                answers.append(T.SubmitReturn(o.code, o.id, o.created, o.detail))
        return answers

    @_guard(lambda: T.GetReturn(result=Code.ERROR, task=None))
    def find(self, ref: str | None, wait_ms: int | None) -> Any:
        code, task = self.service.tasks.find(ref or "", max(0, wait_ms or 0) / 1000.0)
        return T.GetReturn(
            result=code, task=None if task is None else convert.task_to_thrift(task)
        )

    @_guard(lambda: T.PageReturn(result=Code.ERROR, tasks=[], more=False))
    def list_tasks(self, query: Any) -> Any:
        try:
            briefs, more = self.service.tasks.page(page_query_from_thrift(query))
        except (InvalidInput, ValueError) as exc:
            log.info("list_tasks refused: %s", exc)
            return T.PageReturn(result=Code.INVALID_INPUT, tasks=[], more=False)
        return T.PageReturn(
            result=Code.OK, tasks=[convert.brief_to_thrift(b) for b in briefs], more=more
        )

    @_guard(lambda: Code.ERROR)
    def send_signal(self, ref: str | None, signum: int | None) -> int:
        return int(self.service.tasks.signal(ref or "", signum if signum is not None else -1))

    @_guard(lambda: Code.ERROR)
    def stop(self, ref: str | None) -> int:
        return int(self.service.tasks.stop(ref or ""))

    @_guard(lambda: Code.ERROR)
    def remove(self, ref: str | None) -> int:
        return int(self.service.tasks.remove(ref or ""))
