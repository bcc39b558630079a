"""The stores keep a task's compile/execute settings as one document (SQLite: JSON in the `spec`
column; MongoDB: the `execute` sub-document), so a limit added later needs no schema change:
records written before it read back with the limit unset."""

from __future__ import annotations

import json

from khala.model import Execute
from khala.store.codec import execute_from_dict, spec_from_json, spec_to_json
from tests.store.test_contract import make_task


def test_a_spec_written_before_execute_disk_limit_reads_back_unset() -> None:
    spec = json.loads(spec_to_json(make_task()))
    del spec["execute"]["disk_limit"]  # what a store from before the field holds
    _, execute = spec_from_json(json.dumps(spec), b"", b"")
    assert execute.disk_limit is None
    assert execute_from_dict({"command": "true", "data": b""}) == Execute(command="true")


def test_execute_disk_limit_round_trips_through_the_spec() -> None:
    task = make_task(execute=Execute(command="true", disk_limit=1 << 20))
    assert json.loads(spec_to_json(task))["execute"]["disk_limit"] == 1 << 20
    _, execute = spec_from_json(spec_to_json(task), b"", b"")
    assert execute == task.execute
