"""The Thrift handler and the report/search conversions, driven without a server: wire structs in,
a domain-level stub service behind, wire structs out."""

from __future__ import annotations

from typing import Any

import pytest

from khala.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RemoteError,
    TooLarge,
    Unavailable,
)
from khala.model import Assignment, Code, Result, SearchQuery, Status, Task, TaskBrief
from khala.rpc import convert
from khala.rpc import judicator_thrift as T
from khala.rpc.handler import JudicatorHandler

TASK_ID = "0123456789abcdef01234567"


class StubService:
    """Records domain calls; raises `fail` from every method when set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: Exception | None = None

    def _called(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        if self.fail is not None:
            raise self.fail

    def ping(self) -> None:
        self._called("ping")

    def add(self, task: Task) -> str:
        self._called("add", task)
        return TASK_ID

    def cancel(self, id: str) -> None:  # noqa: A002
        self._called("cancel", id)

    def search(self, query: SearchQuery) -> tuple[int, list[TaskBrief]]:
        self._called("search", query)
        return 3, [TaskBrief(id=TASK_ID, user=5)]

    def get(self, id: str) -> Task:  # noqa: A002
        self._called("get", id)
        return Task(id=id, user=5)

    def executors(self) -> list[Any]:
        self._called("executors")
        return []

    def report(self, *args: Any) -> Assignment:
        self._called("report", *args)
        return Assignment(assign=[Task(id=TASK_ID)], cancel=["f" * 24])

    def wake(self, executor: str, draining: bool = False) -> None:
        self._called("wake", executor, draining)

    def leave(self, executor: str) -> None:
        self._called("leave", executor)


@pytest.fixture
def service() -> StubService:
    return StubService()


@pytest.fixture
def handler(service: StubService) -> JudicatorHandler:
    return JudicatorHandler(service)


def wire_task(**changes: Any) -> Any:
    task = convert.task_to_thrift(Task(user=3))
    for name, value in changes.items():
        setattr(task, name, value)
    return task


@pytest.mark.parametrize(
    ("fail", "code"),
    [
        (TooLarge("big"), Code.TOO_LARGE),
        (InvalidInput("bad"), Code.INVALID_INPUT),
        (NotFound("gone"), Code.NOT_EXIST),
        (Unavailable("store down"), Code.ERROR),
        (Unavailable("store lock 'x' held for over 1.0 s"), Code.ERROR),
        (RuntimeError("bug"), Code.ERROR),
    ],
)
def test_errors_become_codes_with_empty_replies(
    handler: JudicatorHandler, service: StubService, fail: Exception, code: Code
) -> None:
    service.fail = fail
    assert handler.add(wire_task()) == T.AddReturn(result=code, id=None)
    assert handler.cancel(TASK_ID) == code
    assert handler.get(TASK_ID) == T.GetReturn(result=code, task=None)
    empty_search = T.SearchReturn(result=code, pages=0, tasks=[])
    assert handler.search(None, None, None, None, None, None, None) == empty_search
    assert handler.executors() == T.ExecutorsReturn(result=code, executors=[])
    assert handler.report("e", [], [], 1, None) == T.ReportReturn(result=code, cancel=[], assign=[])


def test_a_locked_task_is_logged_in_one_line_not_as_a_failure(
    handler: JudicatorHandler, service: StubService, caplog: pytest.LogCaptureFixture
) -> None:
    """Unavailable is expected while the store is down or a dead judicator's lock stands (the
    caller tries again): a warning without a traceback, where an unexpected error gets one."""
    service.fail = Unavailable("store lock 'x' held for over 1.0 s")
    assert handler.cancel(TASK_ID) == Code.ERROR
    assert [(r.levelname, r.exc_info) for r in caplog.records] == [("WARNING", None)]
    caplog.clear()
    service.fail = RuntimeError("bug")
    assert handler.cancel(TASK_ID) == Code.ERROR
    assert caplog.records[0].exc_info is not None


def test_ok_replies(handler: JudicatorHandler, service: StubService) -> None:
    assert handler.ping() == Code.OK and handler.wake(None) == Code.OK
    assert service.calls[-1] == ("wake", ("", False))
    assert handler.wake("e", True) == Code.OK and service.calls[-1] == ("wake", ("e", True))
    assert handler.leave("e") == Code.OK and service.calls[-1] == ("leave", ("e",))
    assert handler.add(wire_task()) == T.AddReturn(result=Code.OK, id=TASK_ID)
    assert service.calls[-1][1][0].user == 3
    got = handler.get(TASK_ID)
    assert got.result == Code.OK and (got.task.id, got.task.user) == (TASK_ID, 5)
    found = handler.search(None, 5, None, None, None, None, None)
    assert (found.result, found.pages, [b.id for b in found.tasks]) == (Code.OK, 3, [TASK_ID])


def test_undecodable_task_is_invalid_input(handler: JudicatorHandler, service: StubService) -> None:
    assert handler.add(wire_task(compile=None)).result == Code.INVALID_INPUT
    bad_text = wire_task()
    bad_text.execute.command = b"not zlib"
    assert handler.add(bad_text).result == Code.INVALID_INPUT
    assert service.calls == []


def test_search_arguments(handler: JudicatorHandler, service: StubService) -> None:
    handler.search(TASK_ID, 5, "2020-01-01T00:00:00+01:00", "2020-01-02", True, 10, 2)
    assert service.calls[-1] == (
        "search",
        (
            SearchQuery(
                TASK_ID, 5, "2019-12-31T23:00:00.000000", "2020-01-02T00:00:00.000000", True, 10, 2
            ),
        ),
    )
    handler.search(None, None, "", None, None, None, None)  # unset: None / defaults
    assert service.calls[-1] == ("search", (SearchQuery(),))
    for args in [("xyz",), (None, -1), (None, None, "yesterday"), (None, None, None, "2020-02-30")]:
        padded = (*args, *([None] * (7 - len(args))))
        assert handler.search(*padded).result == Code.INVALID_INPUT


def test_report_converts_leniently(handler: JudicatorHandler, service: StubService) -> None:
    good = T.Task(
        id="a" * 24, status=5, result=convert.result_to_thrift(Result(execute_output=b"x"))
    )
    garbled = T.Task(id="b" * 24, status=5, result=T.Result(execute_output=b"not zlib"))
    no_status = T.Task(id="c" * 24)
    complete = [good, garbled, no_status, None, T.Task(id="")]
    executing = [T.TaskBrief(id="d" * 24, status=3), None, T.TaskBrief(id=None)]
    reply = handler.report("exec", complete, executing, None, None)
    assert reply.result == Code.OK
    assert [b.id for b in reply.cancel] == ["f" * 24] and reply.cancel[0].status is None
    assert [t.id for t in reply.assign] == [TASK_ID]
    _, (executor, finished, running, vacant, wait_ms, languages, can) = service.calls[-1]
    assert (executor, vacant, wait_ms, languages, can) == ("exec", 0, 0, [], frozenset())
    assert [(t.id, t.status) for t in finished] == [
        ("a" * 24, 5), ("b" * 24, Status.UNKNOWN_ERROR), ("c" * 24, Status.UNKNOWN_ERROR),
    ]  # fmt: skip
    assert finished[0].result == Result(execute_output=b"x")
    assert b"could not be decoded" in finished[1].result.compile_error
    assert [(b.id, b.status) for b in running] == [("d" * 24, 3)]


def test_report_passes_the_features_it_can_read(handler: JudicatorHandler,
                                                 service: StubService) -> None:
    """Argument 8: the names an executor sends (anything not a string dropped); none from an
    old executor."""
    handler.report("exec", [], [], 1, 0, None, None, ["images", None, "later"])
    assert service.calls[-1][1][6] == frozenset({"images", "later"})
    handler.report("exec", [], [], 1, 0, None, None)
    assert service.calls[-1][1][6] == frozenset()


def test_report_shapes_sent_by_the_client() -> None:
    done = Task(id=TASK_ID, user=9, done=True, status=Status.SUCCESS, executor="e", result=Result())
    wire = convert.completed_to_thrift(done)
    assert (wire.id, wire.done, wire.status, wire.executor) == (TASK_ID, True, 5, "e")
    assert (wire.user, wire.compile, wire.execute, wire.add_time) == (None, None, None, None)
    brief = convert.executing_to_thrift(TaskBrief(id=TASK_ID, status=Status.RUNNING, executor="e"))
    assert brief == T.TaskBrief(id=TASK_ID, status=3, executor="e")


def test_assignment_keeps_undecodable_tasks() -> None:
    reply = T.ReportReturn(
        result=Code.OK,
        cancel=[T.TaskBrief(id="f" * 24)],
        assign=[convert.task_to_thrift(Task(id="a" * 24)), T.Task(id="b" * 24)],
    )
    got = convert.assignment_from_thrift(reply, "127.0.0.1:9")
    assert [t.id for t in got.assign] == ["a" * 24] and got.cancel == ["f" * 24]
    assert [i for i, _ in got.undecodable] == ["b" * 24] and got.judicator == "127.0.0.1:9"


def test_codes_become_errors() -> None:
    assert type(convert.error_of(Code.TOO_LARGE, "add")) is TooLarge
    assert type(convert.error_of(Code.INVALID_INPUT, "add")) is InvalidInput
    assert type(convert.error_of(Code.NOT_EXIST, "get")) is NotFound
    assert type(convert.error_of(Code.CONFLICT, "stop")) is Conflict
    for code in (Code.ERROR, 99):
        error = convert.error_of(code, "get", "127.0.0.1:9")
        assert isinstance(error, RemoteError) and error.address == "127.0.0.1:9"
    assert [kind.code for kind in convert.REFUSALS] == [
        Code.TOO_LARGE, Code.INVALID_INPUT, Code.NOT_EXIST, Code.CONFLICT,
    ]  # fmt: skip


class StubTasks:
    """The judicator's API v2 side, raising `fail` from every method."""

    def __init__(self, fail: Exception) -> None:
        self.fail = fail

    def find(self, ref: str, wait: float, lean: bool = False) -> Task:
        raise self.fail

    def page(self, query: Any) -> Any:
        raise self.fail

    def signal(self, ref: str, signum: int) -> None:
        raise self.fail

    def stop(self, ref: str) -> None:
        raise self.fail

    def remove(self, ref: str) -> None:
        raise self.fail

    def submit(self, tasks: list[Task]) -> Any:
        if tasks:
            raise self.fail
        return []


@pytest.mark.parametrize(
    ("fail", "code"),
    [(InvalidInput("bad"), Code.INVALID_INPUT), (NotFound("no task 'x'"), Code.NOT_EXIST),
     (Conflict("the task is done"), Code.CONFLICT), (Unavailable("held"), Code.ERROR),
     (RuntimeError("bug"), Code.ERROR)],
)
def test_api_v2_methods_answer_refusals_as_the_others_do(
    service: StubService, fail: Exception, code: Code
) -> None:
    service.tasks = StubTasks(fail)  # type: ignore[attr-defined]
    handler = JudicatorHandler(service)
    assert handler.find("x", 0) == T.GetReturn(result=code, task=None)
    assert handler.list_tasks(None) == T.PageReturn(result=code, tasks=[], more=False)
    assert handler.send_signal("x", 10) == code
    assert handler.stop("x") == code
    assert handler.remove("x") == code
    assert handler.submit([wire_task()]) == []  # the call failed as a whole
    # a task that cannot be decoded is refused alone, before the service sees the batch
    assert handler.submit([wire_task(compile=None)])[0].result == Code.INVALID_INPUT
