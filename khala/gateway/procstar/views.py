"""The Procstar routes' views: each a call or two to the judicators (and, for a running
process's output, to its executor), answered `{"data": …}`; errors are the blueprint's."""

from __future__ import annotations

import signal as _signal
import uuid
from typing import Any

from flask import Response, jsonify, request
from pydantic import ValidationError

from khala.config import GatewaySettings
from khala.errors import Conflict, InvalidInput, KhalaError, NotFound
from khala.gateway import auth
from khala.gateway.encoding import encoded
from khala.gateway.live.oneshot import Unreachable, snapshot
from khala.gateway.procstar.errors import ProcError
from khala.gateway.procstar.render import (
    FD_NAMES,
    FDS,
    Output,
    fd_result,
    proc_result,
    stored_outputs,
)
from khala.gateway.procstar.spec import ID_RE, KEY_PREFIX, ProcSpec, SpecError, task_of
from khala.model import MAX_PAGE, Code, PageQuery, Status, Task
from khala.rpc.client import JudicatorClient
from khala.streams.registry import EndpointLookup


def _json(data: Any, status: int = 200) -> Response:
    response = jsonify({"data": data})
    response.status_code = status
    return response


class ProcViews:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient,
                 lookup: EndpointLookup) -> None:
        self.settings, self.client, self.lookup = settings, client, lookup

    # ------------------------------------------------------------------ reading

    def _task(self, proc_id: str) -> Task:
        if not ID_RE.match(proc_id):
            raise ProcError(404, f"no process {proc_id!r}")
        try:
            task = self.client.find(KEY_PREFIX + proc_id)
        except NotFound:
            raise ProcError(404, f"no process {proc_id!r}") from None
        if not auth.may_see(task.user):
            raise ProcError(404, f"no process {proc_id!r}")
        return task

    def _outputs(self, task: Task) -> dict[str, Output]:
        if task.done or task.status != Status.RUNNING:
            return stored_outputs(task)
        try:
            now = snapshot(self.lookup, task)
        except Unreachable as exc:
            return {fd: Output(error=f"not readable while it runs: {exc}") for fd in FDS}
        return {fd: Output(now.streams.get(name, (0, b""))[1], now.streams.get(name, (0, b""))[0])
                for fd, name in FDS.items()}

    def _pid(self, task: Task, stats: dict[str, list[dict[str, Any]]]) -> int | None:
        """The pid its executor last reported for its running process."""
        if task.done or task.status != Status.RUNNING or not task.executor:
            return None
        if task.executor not in stats:
            try:
                stats[task.executor] = self.client.executor_stats(task.executor)
            except KhalaError:
                stats[task.executor] = []
        for doc in stats[task.executor]:
            for usage in doc.get("tasks", []):
                # a pid reported while it compiled is the compile step's (statistics may be
                # older than the task's status: they are written at most twice a second)
                if usage.get("id") == task.id and usage.get("status") == Status.RUNNING:
                    return usage.get("pid")  # type: ignore[no-any-return]
        return None

    def _result(self, task: Task, stats: dict[str, list[dict[str, Any]]] | None = None
                ) -> dict[str, Any]:
        with_text = "fds" in request.args
        return proc_result(task, self._outputs(task), self._pid(task, {} if stats is None
                                                                 else stats), with_text)

    def list(self) -> Response:
        briefs, _ = self.client.page(PageQuery(user=auth.list_user(None), limit=MAX_PAGE,
                                               key_prefix=KEY_PREFIX, old_to_new=True))
        stats: dict[str, list[dict[str, Any]]] = {}
        procs = {}
        for brief in briefs:
            try:
                task = self.client.find(brief.id)
            except NotFound:
                continue  # deleted meanwhile
            procs[(task.key or "").removeprefix(KEY_PREFIX)] = self._result(task, stats)
        return _json({"procs": procs})

    def get(self, id: str) -> Response:  # noqa: A002 - route name
        return _json({"proc": self._result(self._task(id))})

    def fd(self, id: str, fd: str) -> Response:  # noqa: A002
        name = self._fd_name(fd)
        output = self._outputs(self._task(id))[name]
        return _json({"fd": name, **fd_result(output, True)})

    def fd_out(self, id: str, fd: str) -> Response:  # noqa: A002
        name = self._fd_name(fd)
        output = self._outputs(self._task(id))[name]
        if output.error:
            raise ProcError(503, output.error)
        response = encoded(output.data, request.headers.get("Accept-Encoding", ""))
        response.headers["X-Khala-Output-Start"] = str(output.start)
        response.headers["X-Khala-Output-Complete"] = "true" if output.complete else "false"
        return response

    @staticmethod
    def _fd_name(fd: str) -> str:
        if fd not in FD_NAMES:
            raise ProcError(404, f"no fd {fd!r}: the captured fds are stdout (1), stderr (2)")
        return FD_NAMES[fd]

    # ------------------------------------------------------------------ control

    def create(self) -> Response:
        return self._start(uuid.uuid4().hex)

    def create_with_id(self, id: str) -> Response:  # noqa: A002
        if not ID_RE.match(id):
            raise ProcError(400, "a process id is 1 to 58 of A-Z a-z 0-9 . _ -")
        return self._start(id)

    def _start(self, proc_id: str) -> Response:
        body = request.get_data(cache=False)
        try:
            spec = ProcSpec.model_validate_json(body or b"null")
            task = task_of(spec, proc_id, auth.claim_user(0, False))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise ProcError(400, f"{where}: {first.get('msg', 'invalid')}") from exc
        except SpecError as exc:
            raise ProcError(400, str(exc)) from exc
        outcome = self.client.submit([task])[0]
        if outcome.code == Code.CONFLICT or (outcome.code == Code.OK and not outcome.created):
            raise ProcError(400, f"a process with the id {proc_id!r} exists")
        if outcome.code != Code.OK:
            raise InvalidInput(outcome.detail or "the process was refused")
        response = _json({"proc": self._result(self.client.find(outcome.id))}, 201)
        response.headers["Location"] = f"/procs/{proc_id}"
        return response

    def delete(self, id: str) -> Response:  # noqa: A002
        task = self._task(id)
        if not task.done:
            raise ProcError(409, f"process {id!r} has not completed")
        try:
            self.client.remove(task.id)
        except NotFound:
            pass  # removed meanwhile: gone either way
        return _json({})

    def signal(self, id: str, signal: str) -> Response:  # noqa: A002
        signum = _signum(signal)
        task = self._task(id)
        try:
            self.client.signal(task.id, signum)
        except Conflict:
            raise ProcError(409, f"process {id!r} has completed") from None
        return _json({"signal": _signal.Signals(signum).name})


def _signum(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if number in {int(s) for s in _signal.Signals}:
            return number
    else:
        name = text.upper() if text.upper().startswith("SIG") else "SIG" + text.upper()
        if name in _signal.Signals.__members__:
            return int(_signal.Signals[name])
    raise ProcError(400, f"unknown signal {text!r}")
