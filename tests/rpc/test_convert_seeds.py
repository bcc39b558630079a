"""The fields the neighbouring seeds' adapters added to the wire, all new optional ids:
StepReport 8 `rusage` and 9 `pid`, Execute 17 `core_limit`, 18 `run_uid`, 19 `run_gid`,
TaskQuery 9 `key_prefix`, TaskUsage 6 `pid`. They round-trip; a client built from the IDL before
them reads everything else as before and sends the same bytes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.utils import deserialize, serialize

from khala.model import Compile, Execute, PageQuery, Result, Rusage, StepReport, Task
from khala.rpc import IDL_PATH, convert
from khala.rpc import judicator_thrift as T

BINARY = TBinaryProtocolFactory()
NEW_FIELDS = (r"    8: optional Rusage rusage,\n", r"    9: optional i32 pid, .*\n",
              r"    17: optional i64 core_limit, .*\n", r"    18: optional i32 run_uid, .*\n",
              r"    19: optional i32 run_gid, .*\n", r"    9: optional string key_prefix, .*\n",
              r"    6: optional i32 pid, .*\n")


def old_idl(tmp_path: Path) -> Any:
    """The IDL as it was before these fields."""
    text = Path(IDL_PATH).read_text()
    for field in NEW_FIELDS:
        text, found = re.subn(field, "", text)
        assert found == 1, field
    path = tmp_path / "old_judicator.thrift"
    path.write_text(text)
    return thriftpy2.load(str(path), module_name="old_seeds_judicator_thrift")


def task(**execute: Any) -> Task:
    usage = Rusage(utime=0.25, stime=0.5, maxrss=9 << 20, minflt=120, majflt=1, inblock=8,
                   oublock=16, nsignals=2, nvcsw=30, nivcsw=4)
    return Task(id="6b02ee5afcee7f1d7be705b1", user=3, done=True,
                compile=Compile(command="true"),
                execute=Execute(command="sleep 1", **execute),
                result=Result(execute_report=StepReport(exit_code=0, rusage=usage, pid=4321)))


def test_they_round_trip() -> None:
    sent = task(core_limit=1 << 22, run_uid=1234, run_gid=1235)
    wire = convert.task_to_thrift(sent)
    assert wire.result.execute_report.rusage.nvcsw == 30
    assert convert.task_from_thrift(wire) == sent
    assert convert.task_from_thrift(convert.task_to_thrift(task())) == task()
    query = PageQuery(key_prefix="procs.", limit=5)
    assert convert.page_query_from_thrift(convert.page_query_to_thrift(query)) == query
    stats = {"slots": 1, "vacant": 0, "version": "x", "load": [], "memory_total": 1,
             "memory_available": 1, "tasks": [{"id": "a", "status": 3, "cpu_time": 0.1,
                                              "memory": 5, "pids": 2, "pid": 77}]}
    assert convert.stats_from_thrift(convert.stats_to_thrift(stats)) == stats


def test_an_old_client_reads_the_rest_and_sends_the_same_bytes(tmp_path: Path) -> None:
    old = old_idl(tmp_path)
    plain = serialize(convert.task_to_thrift(_without_new(task())), BINARY)
    seen = deserialize(old.Task(), plain, BINARY)
    assert serialize(seen, BINARY) == plain  # nothing new set: the same bytes
    full = serialize(convert.task_to_thrift(task(core_limit=1, run_uid=5, run_gid=6)), BINARY)
    read = deserialize(old.Task(), full, BINARY)  # the new fields are skipped
    report = read.result.execute_report
    assert (report.exit_code, read.execute.command) == (0, convert.task_to_thrift(
        task()).execute.command)
    assert not hasattr(report, "rusage") and not hasattr(read.execute, "run_uid")
    # what an old executor hands in reads without them
    back = convert.task_from_thrift(deserialize(T.Task(), serialize(read, BINARY), BINARY))
    assert back.result is not None and back.result.execute_report is not None
    assert back.result.execute_report.rusage is None and back.execute.run_uid is None


def _without_new(made: Task) -> Task:
    assert made.result is not None and made.result.execute_report is not None
    made.result.execute_report.rusage, made.result.execute_report.pid = None, None
    return made
