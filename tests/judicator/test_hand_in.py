"""`hand_in` (docs/rpc.md): results recorded outside a report, only from the executor that
holds the task, while that executor's report long-poll goes on. Real SQLite store."""

from __future__ import annotations

import threading
from pathlib import Path

from khala import model
from khala.config import JudicatorSettings
from khala.discovery.static import LocalBus
from khala.judicator.notifier import Notifier
from khala.judicator.service import JudicatorService
from khala.model import Assignment, Execute, Result, Status, Task
from khala.store import open_store


class SeenNotifier(Notifier):
    """The real notifier, telling the test when a long-poll is held (waits in it)."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()

    def wait(self, executor: str, since: int, timeout: float) -> str:
        self.holding.set()
        return super().wait(executor, since, timeout)


def service_on(path: Path) -> JudicatorService:
    """poll_fallback 60 s: the held call re-checks the store only when woken (its periodic
    re-check would find the handed-in task gone and answer with its id in `cancel`)."""
    url = f"sqlite:///{path}/khala.db"
    return JudicatorService(open_store(url), JudicatorSettings(store=url, poll_fallback=60),
                            SeenNotifier(), LocalBus())


def result_of(task_id: str, executor: str) -> Task:
    return Task(id=task_id, done=True, status=Status.SUCCESS, executor=executor,
                result=Result(execute_output=b"out"))


def test_hand_in_records_the_holders_result_and_drops_anothers(tmp_path: Path) -> None:
    service = service_on(tmp_path)
    first = service.add(Task(execute=Execute(command="true")))
    second = service.add(Task(execute=Execute(command="true")))
    assert {t.id for t in service.report("ex", [], [], 2).assign} == {first, second}

    service.hand_in("ex", [result_of(first, "ex")])
    service.hand_in("other", [result_of(second, "other")])  # not its task: dropped

    done = service.get(first)
    assert done.done and done.status == Status.SUCCESS
    assert done.result is not None and done.result.execute_output == b"out"
    assert not service.get(second).done
    assert service.get(second).executor == "ex"


def test_a_long_poll_goes_on_after_a_hand_in(tmp_path: Path) -> None:
    service = service_on(tmp_path)
    held = service.add(Task(execute=Execute(command="true")))
    assert [t.id for t in service.report("ex", [], [], 1).assign] == [held]
    answers: list[Assignment] = []
    brief = model.TaskBrief(id=held, status=Status.RUNNING, executor="ex")
    poll = threading.Thread(
        target=lambda: answers.append(service.report("ex", [], [brief], 1, wait_ms=20_000)))
    poll.start()
    assert isinstance(service.notifier, SeenNotifier)
    assert service.notifier.holding.wait(10)  # the report is held now (its progress written)

    service.hand_in("ex", [result_of(held, "ex")])
    poll.join(0.3)
    assert poll.is_alive() and not answers  # the hand-in did not end the long-poll

    queued = service.add(Task(execute=Execute(command="true")))
    poll.join(10)
    assert not poll.is_alive()
    assert [t.id for t in answers[0].assign] == [queued]
    assert service.get(held).done
