"""The stores keep a task's compile/execute settings as one document (SQLite: JSON in the `spec`
column; MongoDB: the `execute` sub-document), so a limit added later needs no schema change:
records written before it read back with the limit unset."""

from __future__ import annotations

import json

from khala.jobs.model import template_from_dict, template_to_dict
from khala.model import (
    Case,
    CaseResult,
    Compare,
    Execute,
    Judgement,
    Result,
    StepReport,
    Verdict,
)
from khala.store.codec import (
    execute_from_dict,
    result_from_json,
    result_to_json,
    spec_from_json,
    spec_to_json,
)
from tests.store.test_contract import make_task


def test_a_spec_written_before_execute_disk_limit_reads_back_unset() -> None:
    spec = json.loads(spec_to_json(make_task()))
    del spec["execute"]["disk_limit"]  # what a store from before the field holds
    _, execute, _ = spec_from_json(json.dumps(spec), b"", b"")
    assert execute.disk_limit is None
    assert execute_from_dict({"command": "true", "data": b""}) == Execute(command="true")


def test_execute_disk_limit_round_trips_through_the_spec() -> None:
    task = make_task(execute=Execute(command="true", disk_limit=1 << 20))
    assert json.loads(spec_to_json(task))["execute"]["disk_limit"] == 1 << 20
    _, execute, _ = spec_from_json(spec_to_json(task), b"", b"")
    assert execute == task.execute


def test_fields_a_newer_version_stored_are_skipped_on_read() -> None:
    """A rolling upgrade: a newer judicator stores a field this version does not know, in the
    spec, a case, the comparison, the result and its reports; every read still works."""
    task = make_task(execute=Execute(command="true", cases=[Case(input="1", standard="1")],
                                     compare=Compare()))
    spec = json.loads(spec_to_json(task))
    for part in (spec["compile"], spec["execute"], spec["execute"]["cases"][0],
                 spec["execute"]["compare"]):
        part["from_the_future"] = 1
    compile_part, execute, _ = spec_from_json(json.dumps(spec), task.compile.source, b"")
    assert (compile_part, execute) == (task.compile, task.execute)
    result = Result(compile_report=StepReport(time=1),
                    judgement=Judgement(verdict=Verdict.ACCEPTED, cases=[CaseResult()]))
    doc = json.loads(result_to_json(result) or "")
    for part in (doc, doc["compile_report"], doc["judgement"], doc["judgement"]["cases"][0]):
        part["from_the_future"] = 1
    assert result_from_json(json.dumps(doc)) == result


def test_a_job_template_a_newer_version_stored_reads_back() -> None:
    """Job templates (khala/jobs/model.py) go through the same readers: a field a newer
    version stored in the template's compile, execute or a case is skipped, and the judging
    parts come back as their types (not plain dicts)."""
    template = make_task(execute=Execute(command="true", cases=[Case(input="1", standard="1")],
                                         compare=Compare()))
    doc = json.loads(json.dumps(template_to_dict(template)))
    for part in (doc["compile"], doc["execute"], doc["execute"]["cases"][0]):
        part["from_the_future"] = 1
    back = template_from_dict(doc)
    assert (back.compile, back.execute) == (template.compile, template.execute)
