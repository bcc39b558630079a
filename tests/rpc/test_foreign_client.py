"""A foreign Thrift client against a real judicator.

The IDL is not written here: it is derived, in the test, from the struct lines and the service
table of the wire contract (/work/shared/design/wire-protocol.md, or the copy beside this file
when that is absent). Apache Thrift's own compiler (Debian `thrift-compiler`) turns it into
Python code in a temporary directory, and the `thrift` PyPI runtime drives every method with the
binary protocol over a buffered transport, as existing Khala clients do.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration  # a real judicator and the Thrift compiler

CONTRACT = Path("/work/shared/design/wire-protocol.md")
CONTRACT_COPY = Path(__file__).with_name("wire-protocol.md")
STRUCT_RE = re.compile(r"^- `(\w+)`: (1 .*)$")
FIELD_RE = re.compile(r"(\d+) `(\w+)` ([\w<>]+)")
ROW_RE = re.compile(r"^\| `(\w+)` \| ([^|]+) \| (\w+) \|")


def contract_text() -> str:
    return (CONTRACT if CONTRACT.exists() else CONTRACT_COPY).read_text()


def idl_from_contract(text: str) -> str:
    """The Thrift IDL the contract describes: its structs, enum and service, with the given ids."""
    lines = ["namespace py foreign"]
    structs: list[tuple[str, str]] = []
    for raw in text.replace("\n  ", " ").splitlines():  # struct lines wrap with an indent
        if raw.startswith("- enum `ReturnCode`"):
            values = re.findall(r"(\w+) = (\d+)", raw)
            lines.append("enum ReturnCode { " + ", ".join(f"{n} = {v}" for n, v in values) + " }")
        elif match := STRUCT_RE.match(raw):
            fields = "; ".join(f"{i}: {t} {n}" for i, n, t in FIELD_RE.findall(match.group(2)))
            structs.append((match.group(1), fields))
    # Thrift needs a struct declared before a field uses it: order by dependency.
    done: set[str] = set()
    while len(done) < len(structs):
        for name, fields in structs:
            needs = {n for n, _ in structs if re.search(rf"\b{n}\b", fields)} - {name}
            if name not in done and needs <= done:
                lines.append(f"struct {name} {{ {fields} }}")
                done.add(name)
    methods = []
    for raw in text.splitlines():
        if match := ROW_RE.match(raw):
            name, args, returns = match.groups()
            params = ", ".join(f"{i}: {t} {n}" for i, n, t in FIELD_RE.findall(args))
            methods.append(f"  {returns} {name}({params})")
    lines.append("service Judicator {\n" + ",\n".join(methods) + "\n}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    compiler = shutil.which("thrift")
    if compiler is None:
        pytest.fail("Apache Thrift's compiler is missing: scripts/install-deps.sh test installs it")
    out = tmp_path_factory.mktemp("foreign")
    idl = out / "judicator.thrift"
    idl.write_text(idl_from_contract(contract_text()))
    subprocess.run([compiler, "--gen", "py", "-out", str(out), str(idl)], check=True)
    sys.path.insert(0, str(out))
    try:
        modules = ("foreign.Judicator", "foreign.ttypes")
        yield tuple(importlib.import_module(name) for name in modules)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "foreign" or m.startswith("foreign.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def judicator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.fixtures.cluster import Cluster

    built = Cluster(tmp_path_factory.mktemp("foreign-judicator"), sandbox="none")
    built.start_judicator(expiry=2)
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture
def client(foreign: Any, judicator: Any) -> Iterator[Any]:
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TSocket, TTransport

    service, _ = foreign
    sock = TSocket.TSocket("127.0.0.1", judicator.judicators[0].port)
    sock.setTimeout(10_000)
    transport = TTransport.TBufferedTransport(sock)
    transport.open()
    try:
        yield service.Client(TBinaryProtocol.TBinaryProtocol(transport))
    finally:
        transport.close()


def z(text: str) -> bytes:
    return zlib.compress(text.encode())


def test_the_idl_is_the_contracts() -> None:
    idl = idl_from_contract(contract_text())
    assert "struct Task { 1: string id; 2: i32 user; 3: Compile compile;" in idl
    assert "SearchReturn search(1: string id, 2: i32 user, 3: string start_time," in idl
    assert idl.count("struct ") == 11 and idl.count("(") == 7  # 11 structs, 7 methods


def test_every_method_from_a_foreign_client(foreign: Any, client: Any) -> None:
    _, t = foreign
    assert client.ping() == t.ReturnCode.OK
    task = t.Task(
        user=77,
        compile=t.Compile(source=b"", command=z("true"), timeout=5),
        execute=t.Execute(
            input=z("1 2"), data=b"", command=z("echo hi"), timeout=5, standard=z("3")
        ),
    )
    added = client.add(task)
    assert added.result == t.ReturnCode.OK and len(added.id) == 24
    got = client.get(added.id)
    assert got.result == t.ReturnCode.OK and got.task.user == 77 and got.task.status == 0
    assert zlib.decompress(got.task.execute.command) == b"echo hi"
    assert client.get("0" * 24).result == t.ReturnCode.NOT_EXIST

    found = client.search(None, 77, None, None, False, 0, 0)
    assert found.result == t.ReturnCode.OK and [b.id for b in found.tasks] == [added.id]
    assert client.search("bad", None, None, None, False, 0, 0).result == t.ReturnCode.INVALID_INPUT

    # the foreign client plays an executor: take the task, run it, hand in its result
    assigned = client.report("foreign-exec", [], [], 1)
    assert assigned.result == t.ReturnCode.OK and [a.id for a in assigned.assign] == [added.id]
    running = client.report("foreign-exec", [], [t.TaskBrief(id=added.id, status=3)], 0)
    assert running.cancel == [] and running.assign == []
    result = t.Result(
        compile_output=b"", compile_error=b"", execute_output=z("hi\n"), execute_error=b""
    )
    done = client.report("foreign-exec", [t.Task(id=added.id, status=5, result=result)], [], 0)
    assert [b.id for b in done.cancel] == [added.id]
    final = client.get(added.id).task
    assert (final.done, final.status, final.executor) == (True, 5, "foreign-exec")
    assert zlib.decompress(final.result.execute_output) == b"hi\n"
    executors = client.executors()
    assert executors.result == t.ReturnCode.OK
    assert "foreign-exec" in [e.hostname for e in executors.executors]

    second = client.add(task)
    assert client.cancel(second.id) == t.ReturnCode.OK
    assert client.cancel(second.id) == t.ReturnCode.NOT_EXIST
    assert client.cancel("bad") == t.ReturnCode.INVALID_INPUT
