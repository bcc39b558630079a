"""Jobs over Thrift: typed structs (JobSpec, Job, JobRun) round trip through the conversion and
the binary protocol; the handler answers every op with the one error convention; and gateways
built before the typed structs (the job as JSON, the answer's `data` JSON) are served as ever."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.utils import deserialize, serialize

from khala.errors import Conflict, InvalidInput, NotFound
from khala.jobs.model import JobRun, JobSpec, JobView
from khala.model import Code, Compile, Execute, Task
from khala.rpc import IDL_PATH, convert
from khala.rpc import judicator_thrift as T
from khala.rpc.handler import JudicatorHandler

BINARY = TBinaryProtocolFactory()
TEMPLATE = Task(user=4, priority=2, compile=Compile(command="true"),
                execute=Execute(command="sleep 1"))


def spec(**changes: Any) -> JobSpec:
    fields: dict[str, Any] = {"name": "night", "type": "cron", "template": TEMPLATE,
                              "cron": "0 3 * * *", "deps": ["a"], "retry_attempts": 2,
                              "retry_backoff": 0.5, "meta": {"user": "guest"}}
    return JobSpec(**{**fields, **changes})


def view(**changes: Any) -> JobView:
    fields: dict[str, Any] = {
        "name": "night", "type": "cron", "replica": 2, "cron": "0 3 * * *", "interval": 3.0,
        "deps": ["a"], "retry_attempts": 2, "retry_backoff": 0.5, "meta": {"user": "guest"},
        "user": 4, "priority": 2, "command": "sleep 1", "status": "running", "generation": 1,
        "created": "2020-01-01T00:00:00.000000",
        "tasks": [JobRun("night.abc.1.0.t5.0", "a" * 24, "night:0", "e1", 3)],
        "last_start": "2020-01-01T00:00:01.000000", "last_end": None, "blocked": None}
    return JobView(**{**fields, **changes})


def wire(struct: Any) -> Any:
    """Through the binary protocol and back."""
    return deserialize(type(struct)(), serialize(struct, BINARY), BINARY)


def test_spec_and_view_round_trip_over_the_wire() -> None:
    sent = spec()
    got = convert.spec_from_thrift(wire(convert.spec_to_thrift(sent)),
                                   wire(convert.task_to_thrift(sent.template)))
    assert got == sent
    assert convert.job_from_thrift(wire(convert.job_to_thrift(view()))) == view()
    # a Meproc job without a group: a null meta value is not sent, and reads back as absent
    unset = convert.spec_to_thrift(spec(meta={"user": "guest", "group": None}))
    assert unset.meta == {"user": "guest"}


class Jobs:
    """The judicator's job API, recording its calls; raises `fail` when set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail: Exception | None = None

    def _called(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.fail is not None:
            raise self.fail

    def create(self, job: JobSpec, stopped: bool = False) -> JobView:
        self._called("define" if stopped else "create", job)
        return view(status="stopped") if stopped else view()

    def set_meta(self, name: str, meta: dict[str, Any]) -> JobView:
        self._called("meta", (name, meta))
        return view(name=name, meta=meta)

    def respec(self, name: str, given: JobSpec, start: bool) -> JobView:
        self._called("respec" if start else "redefine", (name, given))
        return view(name=name, template=given.template)

    def list(self) -> list[JobView]:
        self._called("list", None)
        return [view(), view(name="other")]

    def get(self, name: str, template: bool = False) -> JobView:
        self._called("inspect" if template else "get", name)
        return view(name=name, template=TEMPLATE if template else None)

    def restart(self, name: str) -> JobView:
        self._called("restart", name)
        return view(name=name, generation=2)

    def delete(self, name: str) -> JobView | None:
        self._called("delete", name)
        return None


@pytest.fixture
def jobs() -> Jobs:
    return Jobs()


@pytest.fixture
def handler(jobs: Jobs) -> JudicatorHandler:
    service = type("Service", (), {})()
    service.jobs = jobs
    return JudicatorHandler(service)


def test_typed_and_json_specs_make_the_same_job(handler: JudicatorHandler, jobs: Jobs) -> None:
    template = convert.task_to_thrift(TEMPLATE)
    typed = handler.jobs("create", "night", None, template, convert.spec_to_thrift(spec()))
    assert typed.result == Code.OK and convert.job_from_thrift(typed.job) == view()
    legacy = {k: v for k, v in vars(spec()).items() if k != "template"}
    old = handler.jobs("create", "night", json.dumps(legacy), template)
    assert old.result == Code.OK
    assert jobs.calls[0] == jobs.calls[1] == ("create", spec())


def test_answers_carry_the_json_older_gateways_read(handler: JudicatorHandler) -> None:
    data = json.loads(handler.jobs("get", "night", None, None).data)
    assert data["retry"] == {"attempts": 2, "backoff": 0.5} and data["meta"] == {"user": "guest"}
    assert data["tasks"] == [{"id": "night.abc.1.0.t5.0", "seed_id": "a" * 24,
                              "alias": "night:0", "executor": "e1", "status": 3}]
    listed = handler.jobs("list", "", None, None)
    assert [j["name"] for j in json.loads(listed.data)] == ["night", "other"]
    assert [convert.job_from_thrift(j).name for j in listed.jobs] == ["night", "other"]
    gone = handler.jobs("delete", "night", None, None)
    assert gone.job is None and json.loads(gone.data) == {"name": "night"}


@pytest.mark.parametrize(("fail", "code"), [
    (NotFound("no job 'night'"), Code.NOT_EXIST), (Conflict("a job has this name"),
                                                   Code.CONFLICT),
    (InvalidInput("cron: bad"), Code.INVALID_INPUT), (RuntimeError("bug"), Code.ERROR)])
def test_refusals_answer_their_code_and_detail(handler: JudicatorHandler, jobs: Jobs,
                                               fail: Exception, code: Code) -> None:
    jobs.fail = fail
    answer = handler.jobs("get", "night", None, None)
    assert (answer.result, answer.data, answer.job) == (code, "null", None)
    assert answer.detail == (str(fail) if code != Code.ERROR else "internal error")


def test_malformed_requests_are_invalid_input(handler: JudicatorHandler, jobs: Jobs) -> None:
    template = convert.task_to_thrift(TEMPLATE)
    for args in (("drop", "x", None, None), ("create", "x", "{not json", template),
                 ("create", "x", '{"name": "x", "colour": "red"}', template),
                 ("create", "x", '{"name": "x"}', template),  # no type
                 ("create", "x", None, None, convert.spec_to_thrift(spec()))):  # no template
        assert handler.jobs(*args).result == Code.INVALID_INPUT, args
    assert jobs.calls == []


def test_an_older_gateway_reads_the_answer_and_its_call_is_understood(tmp_path: Path) -> None:
    """Built from the IDL before the typed jobs: JobReturn without 4 and 5, jobs without 5."""
    text = Path(IDL_PATH).read_text()
    for added in ("    4: optional Job job,", "    5: optional list<Job> jobs,"):
        text = "\n".join(line for line in text.splitlines() if not line.startswith(added))
    text = text.replace(",\n                   5: JobSpec job)", ")")
    path = tmp_path / "old_judicator.thrift"
    path.write_text(text)
    old = thriftpy2.load(str(path), module_name="old_jobs_thrift")
    assert 5 not in old.Judicator.jobs_args.thrift_spec and 4 not in old.JobReturn.thrift_spec
    answer = convert.job_answer(view())
    read = deserialize(old.JobReturn(), serialize(answer, BINARY), BINARY)
    assert read.result == Code.OK and json.loads(read.data)["name"] == "night"
    call = old.Judicator.jobs_args(op="get", name="night", spec="", template=None)
    new = deserialize(T.Judicator.jobs_args(), serialize(call, BINARY), BINARY)
    assert (new.op, new.name, new.job) == ("get", "night", None)


def test_the_later_ops_carry_their_arguments_and_answer_the_job(
        handler: JudicatorHandler, jobs: Jobs) -> None:
    template = convert.task_to_thrift(TEMPLATE)
    typed = convert.spec_to_thrift(spec(meta={"v": "2"}))
    defined = handler.jobs("define", "night", None, template, typed)
    assert defined.result == Code.OK and defined.job.status == "stopped"
    assert handler.jobs("meta", "night", None, None, typed).job.spec.meta == {"v": "2"}
    for op in ("respec", "redefine"):
        answer = handler.jobs(op, "night", None, template, typed)
        assert answer.result == Code.OK
        assert convert.job_from_thrift(wire(answer.job)).template == TEMPLATE
    inspected = convert.job_from_thrift(wire(handler.jobs("inspect", "night", None, None).job))
    assert inspected.template == TEMPLATE
    assert convert.job_from_thrift(wire(handler.jobs("get", "night", None, None).job)
                                   ).template is None
    assert [c[0] for c in jobs.calls] == ["define", "meta", "respec", "redefine", "inspect",
                                          "get"]
    assert jobs.calls[1] == ("meta", ("night", {"v": "2"}))
    assert jobs.calls[2] == ("respec", ("night", spec(meta={"v": "2"})))


def test_the_later_ops_without_their_job_are_invalid_input(handler: JudicatorHandler,
                                                          jobs: Jobs) -> None:
    template = convert.task_to_thrift(TEMPLATE)
    for args in (("meta", "night", None, None), ("respec", "night", None, template),
                 ("redefine", "night", None, template),
                 ("respec", "night", None, None, convert.spec_to_thrift(spec()))):
        assert handler.jobs(*args).result == Code.INVALID_INPUT, args
    assert jobs.calls == []
