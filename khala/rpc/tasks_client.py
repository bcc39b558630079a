"""Typed API v2 calls on domain types over a failover JudicatorClient; all Thrift conversion of
these calls stays here."""

from __future__ import annotations

from typing import Any

from khala.errors import InvalidInput
from khala.model import Code, PageQuery, SubmitOutcome, Task, TaskBrief
from khala.rpc import convert
from khala.rpc.handler_v2 import page_query_to_thrift


class TaskClient:
    def __init__(self, client: Any, timeout: float) -> None:
        self._client = client  # a JudicatorClient (or anything with its `call`)
        self._timeout = timeout

    def submit(self, tasks: list[Task]) -> list[SubmitOutcome]:
        replies = self._client.call(
            "submit", [convert.task_to_thrift(t) for t in tasks],
            timeout=self._timeout + 0.05 * len(tasks),
        )
        return [
            SubmitOutcome(int(r.result), r.id or "", bool(r.created), r.detail or "")
            for r in replies or []
        ]

    def find(self, ref: str, wait: float = 0.0) -> tuple[int, Task | None]:
        reply = self._client.call("find", ref, int(wait * 1000), timeout=self._timeout + wait)
        code = int(reply.result)
        if code != Code.OK or reply.task is None:
            return (code if code != Code.OK else Code.ERROR), None
        try:
            return Code.OK, convert.task_from_thrift(reply.task)
        except InvalidInput:
            return Code.ERROR, None

    def page(self, query: PageQuery) -> tuple[int, list[TaskBrief], bool]:
        reply = self._client.call("list_tasks", page_query_to_thrift(query))
        briefs = [convert.brief_from_thrift(b) for b in reply.tasks or []]
        return int(reply.result), briefs, bool(reply.more)

    def signal(self, ref: str, signum: int) -> int:
        return int(self._client.call("send_signal", ref, signum))

    def stop(self, ref: str) -> int:
        return int(self._client.call("stop", ref))

    def remove(self, ref: str) -> int:
        return int(self._client.call("remove", ref))
