"""The API v2 calls of the typed JudicatorClient (mixed into it), on domain types; all Thrift
conversion of these calls stays here. Unlike the seed calls they answer their outcome code
(Code.OK, NOT_EXIST, CONFLICT, …) instead of raising for it: the HTTP status depends on it."""

from __future__ import annotations

from typing import Any

from khala.errors import InvalidInput
from khala.model import Code, Language, PageQuery, SubmitOutcome, Task, TaskBrief
from khala.rpc import convert
from khala.rpc.handler_v2 import page_query_to_thrift


class TaskCalls:
    _timeout: float

    def _call(self, method: str, *args: Any, timeout: float | None = None,
              prefer: str | None = None) -> tuple[Any, str]:
        raise NotImplementedError  # JudicatorClient's failover call

    def _v2(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        reply, _ = self._call(method, *args, timeout=timeout)
        return reply

    def submit(self, tasks: list[Task]) -> list[SubmitOutcome]:
        replies = self._v2(
            "submit", [convert.task_to_thrift(t) for t in tasks],
            timeout=self._timeout + 0.05 * len(tasks),
        )
        return [
            SubmitOutcome(int(r.result), r.id or "", bool(r.created), r.detail or "")
            for r in replies or []
        ]

    def find(self, ref: str, wait: float = 0.0) -> tuple[int, Task | None]:
        reply = self._v2("find", ref, int(wait * 1000), timeout=self._timeout + wait)
        code = int(reply.result)
        if code != Code.OK or reply.task is None:
            return (code if code != Code.OK else Code.ERROR), None
        try:
            return Code.OK, convert.task_from_thrift(reply.task)
        except InvalidInput:
            return Code.ERROR, None

    def page(self, query: PageQuery) -> tuple[int, list[TaskBrief], bool]:
        reply = self._v2("list_tasks", page_query_to_thrift(query))
        briefs = [convert.brief_from_thrift(b) for b in reply.tasks or []]
        return int(reply.result), briefs, bool(reply.more)

    def signal(self, ref: str, signum: int) -> int:
        return int(self._v2("send_signal", ref, signum))

    def stop(self, ref: str) -> int:
        return int(self._v2("stop", ref))

    def remove(self, ref: str) -> int:
        return int(self._v2("remove", ref))

    def language_list(self) -> tuple[int, list[Language]]:
        """The presets of live executors (judging), with the outcome code."""
        reply = self._v2("languages")
        return int(reply.result), [convert.language_from_thrift(x) for x in reply.languages or []]
