"""execute_disk_limit over Thrift: Execute field 14, optional i64. Clients built from the IDL
before it (existing Khala clients) send and read the same bytes as ever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.utils import deserialize, serialize

from khala.model import Compile, Execute, Task
from khala.rpc import IDL_PATH, convert
from khala.rpc import judicator_thrift as T

FIELD_14 = "    14: optional i64 disk_limit,    // bytes of the run's work area\n"
BINARY = TBinaryProtocolFactory()


def old_idl(tmp_path: Path) -> Any:
    """The IDL as it was before field 14."""
    text = Path(IDL_PATH).read_text()
    assert FIELD_14 in text
    path = tmp_path / "old_judicator.thrift"
    path.write_text(text.replace(FIELD_14, ""))
    return thriftpy2.load(str(path), module_name="old_judicator_thrift")


def task(disk_limit: int | None) -> Task:
    return Task(id="6b02ee5afcee7f1d7be705b1", user=3,
                compile=Compile(source=b"PK", command="true", timeout=10),
                execute=Execute(command="./a.out", timeout=2, pids_limit=8,
                                disk_limit=disk_limit))


def test_field_14_is_an_optional_i64_named_disk_limit() -> None:
    spec = T.Execute.thrift_spec[14]
    assert spec[1] == "disk_limit" and spec[0] == thriftpy2.thrift.TType.I64
    assert T.Execute.default_spec[13] == ("disk_limit", None)
    # the ids before it keep their names
    assert [T.Execute.thrift_spec[i][1] for i in (6, 7, 8, 9, 13)] == [
        "memory_limit", "cpu_limit", "pids_limit", "output_limit", "interactive"]


def test_disk_limit_round_trips() -> None:
    for limit in (None, 1, 1 << 20, 2**62):
        sent = task(limit)
        wire = convert.task_to_thrift(sent)
        assert wire.execute.disk_limit == limit
        assert convert.task_from_thrift(wire) == sent


def test_an_old_client_sends_and_reads_the_same_bytes(tmp_path: Path) -> None:
    old = old_idl(tmp_path)
    new_bytes = serialize(convert.task_to_thrift(task(None)), BINARY)
    old_wire = deserialize(old.Task(), new_bytes, BINARY)
    assert serialize(old_wire, BINARY) == new_bytes  # unset: byte for byte what it was
    # A task an old client sends reads back without a disk limit.
    assert convert.task_from_thrift(deserialize(T.Task(), new_bytes, BINARY)) == task(None)
    # A task with a disk limit, read by an old client: field 14 skipped, the rest intact.
    with_limit = serialize(convert.task_to_thrift(task(1 << 20)), BINARY)
    assert len(with_limit) == len(new_bytes) + 11  # i64 field: type, id, 8 bytes
    seen = deserialize(old.Task(), with_limit, BINARY)
    assert serialize(seen, BINARY) == new_bytes
    assert seen.execute.pids_limit == 8 and not hasattr(seen.execute, "disk_limit")
