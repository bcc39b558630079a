"""The Judicator Thrift API driven by a client built only from wire-protocol.md, against a real
judicator process (binary protocol, buffered transport, as existing clients speak it)."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.transport import TBufferedTransportFactory

pytestmark = pytest.mark.integration  # a real judicator process

W = thriftpy2.load(str(Path(__file__).with_name("wire_client.thrift")), module_name="wire_thrift")

OK, ERROR, NOT_EXIST, TOO_LARGE, INVALID_INPUT = 0, 1, 2, 3, 4


def z(text: str) -> bytes:
    return zlib.compress(text.encode()) if text else b""


def task(user: int = 7, compile_cmd: str = "true", execute_cmd: str = "true", **kw: Any) -> Any:
    return W.Task(
        user=user,
        compile=W.Compile(
            source=kw.get("source", b""),
            command=z(compile_cmd),
            timeout=kw.get("compile_timeout", 5),
        ),
        execute=W.Execute(
            input=z(kw.get("input", "")),
            data=b"",
            command=z(execute_cmd),
            timeout=kw.get("execute_timeout", 5),
            standard=z(kw.get("standard", "")),
        ),
    )


@pytest.fixture(scope="module")
def judicator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A judicator with no executors: the test itself plays the executor over report()."""
    from tests.fixtures.cluster import Cluster

    built = Cluster(tmp_path_factory.mktemp("rpc"), sandbox="none")
    built.start_judicator(max_task_size=100_000, expiry=2)
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture
def client(judicator: Any) -> Any:
    conn = make_client(
        W.Judicator,
        "127.0.0.1",
        judicator.judicators[0].port,
        timeout=10000,
        proto_factory=TBinaryProtocolFactory(),
        trans_factory=TBufferedTransportFactory(),
    )
    yield conn
    conn.close()


def drain_queue(client: Any) -> None:
    """Take and finish every queued task so each test starts from an empty queue."""
    while True:
        got = client.report("drainer", [], [], 100)
        if not got.assign:
            return
        done = [W.Task(id=t.id, status=5, result=W.Result()) for t in got.assign]
        client.report("drainer", done, [], 0)


def test_ping_and_add_get(client: Any) -> None:
    assert client.ping() == OK
    added = client.add(task(user=42, execute_cmd="echo hi", input="1 2", standard="3"))
    assert added.result == OK and len(added.id) == 24
    got = client.get(added.id)
    assert got.result == OK
    t = got.task
    assert (t.id, t.user, t.done, t.status, t.executor) == (added.id, 42, False, 0, None)
    assert zlib.decompress(t.execute.command) == b"echo hi"
    assert zlib.decompress(t.execute.input) == b"1 2"
    assert zlib.decompress(t.execute.standard) == b"3"
    assert t.add_time and t.report_time == "" and t.result is None
    assert client.get("0" * 24).result == NOT_EXIST
    assert client.get("not-an-id").result == INVALID_INPUT


def test_add_rejects_bad_input(client: Any) -> None:
    assert client.add(task(user=-1)).result == INVALID_INPUT
    assert client.add(task(compile_timeout=-5)).result == INVALID_INPUT
    assert client.add(W.Task(user=1)).result == INVALID_INPUT  # no compile/execute parts
    bad_text = task()
    bad_text.compile.command = b"not zlib"
    assert client.add(bad_text).result == INVALID_INPUT
    assert client.add(task(source=b"not a zip")).result == INVALID_INPUT
    assert client.add(task(execute_cmd="x" * 200_000)).result == TOO_LARGE


def test_search_filters_order_and_pages(client: Any) -> None:
    user = 90_001
    ids = [client.add(task(user=user)).id for _ in range(5)]
    found = client.search(None, user, None, None, False, 0, 0)
    assert found.result == OK and found.pages == 1
    assert [b.id for b in found.tasks] == ids[::-1]  # newest first
    oldest = client.search(None, user, None, None, True, 2, 0)
    assert oldest.pages == 3 and [b.id for b in oldest.tasks] == ids[:2]
    last = client.search(None, user, None, None, True, 2, 2)
    assert [b.id for b in last.tasks] == ids[4:]
    one = client.search(ids[2], None, None, None, False, 0, 0)
    assert [b.id for b in one.tasks] == [ids[2]]
    first_time = client.get(ids[1]).task.add_time
    since = client.search(None, user, first_time, None, True, 0, 0)
    assert [b.id for b in since.tasks] == ids[1:]
    until = client.search(None, user, None, first_time, True, 0, 0)
    assert [b.id for b in until.tasks] == ids[:2]
    assert client.search(None, 123_456_789, None, None, False, 0, 0).pages == 0
    assert client.search("xyz", None, None, None, False, 0, 0).result == INVALID_INPUT
    assert client.search(None, None, "yesterday", None, False, 0, 0).result == INVALID_INPUT
    assert client.search(None, None, None, None, False, -1, 0).result == INVALID_INPUT


def test_cancel(client: Any) -> None:
    added = client.add(task())
    assert client.cancel(added.id) == OK
    got = client.get(added.id).task
    assert (got.done, got.status) == (True, 7)
    assert client.cancel(added.id) == NOT_EXIST  # already done
    assert client.cancel("f" * 24) == NOT_EXIST
    assert client.cancel("bad") == INVALID_INPUT


def test_report_assigns_records_and_lists_executor(client: Any) -> None:
    drain_queue(client)
    added = client.add(task(execute_cmd="echo hi"))
    got = client.report("exec-a", [], [], 1)
    assert got.result == OK and [t.id for t in got.assign] == [added.id]
    assert zlib.decompress(got.assign[0].execute.command) == b"echo hi"
    assert client.get(added.id).task.executor == "exec-a"
    assert client.get(added.id).task.status == 1
    running = W.TaskBrief(id=added.id, status=3)
    got = client.report("exec-a", [], [running], 0)
    assert got.cancel == [] and got.assign == []
    assert client.get(added.id).task.status == 3
    result = W.Result(
        compile_output=z("c"), compile_error=b"", execute_output=z("hi\n"), execute_error=b""
    )
    got = client.report("exec-a", [W.Task(id=added.id, status=5, result=result)], [], 0)
    assert [b.id for b in got.cancel] == [added.id]  # forget it
    final = client.get(added.id).task
    assert (final.done, final.status) == (True, 5)
    assert zlib.decompress(final.result.execute_output) == b"hi\n"
    names = [e.hostname for e in client.executors().executors]
    assert "exec-a" in names


def test_late_result_is_dropped(client: Any) -> None:
    drain_queue(client)
    added = client.add(task())
    assert [t.id for t in client.report("exec-b", [], [], 1).assign] == [added.id]
    late = W.Task(id=added.id, status=4, result=W.Result(execute_output=z("late")))
    got = client.report("exec-c", [late], [], 0)  # exec-c never held it
    assert [b.id for b in got.cancel] == [added.id]
    still = client.get(added.id).task
    assert (still.done, still.status, still.executor) == (False, 1, "exec-b")
    good = W.Task(id=added.id, status=5, result=W.Result(execute_output=z("good")))
    client.report("exec-b", [good], [], 0)
    again = client.report("exec-b", [late], [], 0)  # a second result: already done
    assert [b.id for b in again.cancel] == [added.id]
    final = client.get(added.id).task
    assert final.status == 5 and zlib.decompress(final.result.execute_output) == b"good"


def test_missing_task_is_requeued_and_cancelled_task_comes_back(client: Any) -> None:
    drain_queue(client)
    a = client.add(task()).id
    b = client.add(task()).id
    assigned = [t.id for t in client.report("exec-d", [], [], 2).assign]
    assert sorted(assigned) == sorted([a, b])
    assert client.cancel(b) == OK
    got = client.report("exec-d", [], [W.TaskBrief(id=b, status=3)], 0)  # a is missing
    assert [x.id for x in got.cancel] == [b]
    lost = client.get(a).task
    assert (lost.status, lost.executor, lost.done) == (6, None, False)
    again = client.report("exec-e", [], [], 1)
    assert [t.id for t in again.assign] == [a]


def test_silent_executor_is_reaped(client: Any) -> None:
    drain_queue(client)
    added = client.add(task()).id
    assert [t.id for t in client.report("exec-silent", [], [], 1).assign] == [added]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and client.get(added).task.status != 6:
        time.sleep(0.1)
    reaped = client.get(added).task
    assert (reaped.status, reaped.executor) == (6, None)
    assert "exec-silent" not in [e.hostname for e in client.executors().executors]


# ----------------------------------------------------------------------------- typed client
# Khala's own client (khala/rpc/client.py) on domain types, against the same real judicator.


@pytest.fixture
def typed(judicator: Any) -> Any:
    from khala.discovery.static import StaticDiscovery
    from khala.rpc.client import JudicatorClient

    # A dead address first: every call must fail over to the live judicator.
    dead = "127.0.0.1:1"
    built = JudicatorClient(StaticDiscovery([dead, judicator.judicator_address]), timeout=10.0)
    yield built
    built.close()


def domain_task(user: int = 7, execute_cmd: str = "true", **kw: Any) -> Any:
    from khala.model import Compile, Execute, Task

    return Task(
        user=user,
        compile=Compile(command="true", timeout=5),
        execute=Execute(command=execute_cmd, timeout=5, **kw),
    )


def test_typed_client_tasks(typed: Any, client: Any) -> None:
    from khala.errors import InvalidInput, NotFound, TooLarge
    from khala.model import SearchQuery, Status

    typed.ping()
    task_id = typed.add(domain_task(user=90_002, execute_cmd="echo ü", input="1 2"))
    assert client.get(task_id).result == OK  # the same task, seen by an old client
    got = typed.get(task_id)
    assert (got.id, got.user, got.status, got.executor, got.result) == (
        task_id, 90_002, Status.PENDING, None, None,
    )  # fmt: skip
    assert (got.execute.command, got.execute.input, got.compile.timeout) == ("echo ü", "1 2", 5)
    pages, briefs = typed.search(SearchQuery(user=90_002))
    assert pages == 1 and [b.id for b in briefs] == [task_id]
    typed.cancel(task_id)
    assert typed.get(task_id).status == Status.CANCELLED
    with pytest.raises(NotFound):
        typed.cancel(task_id)
    with pytest.raises(NotFound):
        typed.get("0" * 24)
    with pytest.raises(InvalidInput):
        typed.get("not-an-id")
    with pytest.raises(InvalidInput):
        typed.add(domain_task(user=-1))
    with pytest.raises(TooLarge):
        typed.add(domain_task(execute_cmd="x" * 200_000))
    with pytest.raises(InvalidInput):
        typed.search(SearchQuery(start_time="yesterday"))


def test_typed_client_report(typed: Any, client: Any, judicator: Any) -> None:
    from khala.model import Result, Status, Task, TaskBrief

    drain_queue(client)
    task_id = typed.add(domain_task(execute_cmd="echo hi"))
    first = typed.report("exec-typed", [], [], 1, 0)
    assert [t.id for t in first.assign] == [task_id] and first.cancel == []
    assert first.assign[0].execute.command == "echo hi" and first.undecodable == []
    assert first.judicator == judicator.judicator_address  # the one that answered
    running = TaskBrief(id=task_id, status=Status.RUNNING, executor="exec-typed")
    assert typed.report("exec-typed", [], [running], 0, prefer=first.judicator).cancel == []
    assert typed.get(task_id).status == Status.RUNNING
    done = Task(id=task_id, done=True, status=Status.SUCCESS, executor="exec-typed",
                result=Result(execute_output=b"hi\n"))  # fmt: skip
    handed = typed.report("exec-typed", [done], [], 0)
    assert handed.cancel == [task_id]
    final = typed.get(task_id)
    assert (final.done, final.status, final.result.execute_output) == (True, 5, b"hi\n")
    assert "exec-typed" in [e.hostname for e in typed.executors()]
    started = time.monotonic()  # a long-poll with nothing to assign holds, then answers empty
    empty = typed.report("exec-typed", [], [], 1, 300, timeout=5.0)
    assert (empty.assign, empty.cancel) == ([], []) and time.monotonic() - started >= 0.25
    typed.wake("exec-typed", prefer=first.judicator)  # ends the next long-poll at once
    started = time.monotonic()
    woken = typed.report("exec-typed", [], [], 1, 4000, timeout=10.0)
    assert (woken.assign, woken.cancel) == ([], []) and time.monotonic() - started < 2.0


def test_a_lean_find_leaves_out_only_the_case_texts(typed: Any, judicator: Any) -> None:
    """find without case texts: each case's input and standard empty, every other field (the
    cases' own limits and weights included) as a full find gives them."""
    import dataclasses

    from khala.model import Case

    cases = [Case("1 2", "3", weight=2, timeout=1.5),
             Case("x" * 5000, "y" * 5000, memory_limit=64 << 20)]
    made = domain_task(user=90_003, cases=cases)
    [outcome] = typed.submit([made])
    assert outcome.code == 0, outcome
    full = typed.find(outcome.id)
    lean = typed.find(outcome.id, lean=True)
    assert full.execute.cases == cases
    assert lean.execute.cases == [dataclasses.replace(c, input="", standard="") for c in cases]
    assert dataclasses.replace(lean, execute=dataclasses.replace(
        lean.execute, cases=cases)) == full
    # A caller built before `lean` sends no third field: it gets the texts.
    from khala.rpc import judicator_thrift as T

    old = make_client(T.Judicator, "127.0.0.1", judicator.judicators[0].port, timeout=10000,
                      proto_factory=TBinaryProtocolFactory(),
                      trans_factory=TBufferedTransportFactory())
    try:
        answer = old.find(outcome.id, 0)
    finally:
        old.close()
    assert [(zlib.decompress(c.input).decode(), zlib.decompress(c.standard).decode())
            for c in answer.task.execute.cases] == [(c.input, c.standard) for c in cases]
