"""The in-memory stub (khala/rpc/stub.py) has the typed client's interface, method for method
and parameter for parameter, so a test that drives a caller with it drives the caller's real
calls; and it refuses as the real client raises."""

from __future__ import annotations

import inspect

import pytest

from khala.errors import Conflict, InvalidInput, NotFound
from khala.model import Compile, Execute, PageQuery, Status, Task, TaskBrief
from khala.rpc.client import JudicatorClient
from khala.rpc.stub import StubJudicator


def public(cls: type) -> dict[str, inspect.Signature]:
    """The public methods of `cls`, its own and those its bases (the stub's parts) give it."""
    return {name: inspect.signature(member) for name, member in inspect.getmembers(cls)
            if callable(member) and not name.startswith("_")}


def test_the_stub_has_every_call_of_the_client_with_its_signature() -> None:
    client, stub = public(JudicatorClient), public(StubJudicator)
    assert set(client) <= set(stub), sorted(set(client) - set(stub))
    for name, signature in client.items():
        assert stub[name] == signature, name


def task(**execute: object) -> Task:
    return Task(user=1, compile=Compile(command="true"),
                execute=Execute(command="cat", **execute))  # type: ignore[arg-type]


def test_refusals_are_those_of_the_client() -> None:
    stub = StubJudicator()
    with pytest.raises(NotFound):
        stub.find("nope")
    with pytest.raises(InvalidInput):
        stub.get("not-an-id")
    with pytest.raises(InvalidInput):
        stub.add(task(timeout=-1))
    ref = stub.submit([task()])[0].id
    with pytest.raises(Conflict):
        stub.remove(ref)
    stub.stop(ref)
    with pytest.raises(Conflict):
        stub.stop(ref)
    with pytest.raises(InvalidInput):
        stub.page(PageQuery(limit=0))


def test_a_report_is_given_queued_tasks_and_records_results() -> None:
    stub = StubJudicator()
    ids = [stub.add(task()) for _ in range(3)]
    got = stub.report("e", [], [], 2)
    assert [t.id for t in got.assign] == ids[:2]
    assert stub.get(ids[0]).status == Status.COMPILING
    done = Task(id=ids[0], status=Status.SUCCESS)
    answer = stub.report("e", [done], [TaskBrief(id=ids[1], status=Status.RUNNING)], 0)
    assert answer.cancel == [ids[0]] and stub.get(ids[0]).done
    stub.leave("e")
    assert stub.get(ids[1]).status == Status.RETRYING and stub.get(ids[1]).executor is None
