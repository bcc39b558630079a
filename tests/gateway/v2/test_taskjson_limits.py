"""execute.disk_limit in API v2's models (khala/taskjson): parsed into the task, refused when it
is not a positive integer the wire can carry, shown back in the task's JSON and the schema."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from khala.taskjson.base import BYTES_MAX
from khala.taskjson.convert import task_from_model, task_out
from khala.taskjson.models import TaskIn, TaskOut


def body(**execute: Any) -> dict[str, Any]:
    return {"compile": {"command": "true"}, "execute": {"command": "true", **execute}}


def test_disk_limit_goes_into_the_task_and_comes_back() -> None:
    task = task_from_model(TaskIn.model_validate(body(disk_limit=1 << 20)), None)
    assert task.execute.disk_limit == 1 << 20
    assert task_out(task).execute.disk_limit == 1 << 20
    plain = task_from_model(TaskIn.model_validate(body()), None)
    assert plain.execute.disk_limit is None
    assert task_out(plain).model_dump()["execute"]["disk_limit"] is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, "lots", BYTES_MAX + 1])
def test_bad_disk_limits_are_refused(bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        TaskIn.model_validate(body(disk_limit=bad))
    assert any(error["loc"][-1] == "disk_limit" or "disk_limit" in error["loc"]
               for error in info.value.errors())


def test_the_schema_documents_it() -> None:
    schema = TaskIn.model_json_schema()["$defs"]["ExecuteIn"]["properties"]["disk_limit"]
    assert "work area" in schema["description"]
    assert "disk_limit" in TaskOut.model_json_schema()["$defs"]["ExecuteOut"]["required"]
