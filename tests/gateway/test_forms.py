"""Gateway form/query parsing: every validation branch, without a server."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace

import pytest

from khala.config import LimitSettings
from khala.errors import InvalidInput, TooLarge
from khala.gateway.seed import forms
from khala.model import INT_MAX, canonical_time
from khala.rules.limits import BYTES_LIMIT_MAX
from khala.zipcheck import make_zip

# The widest policy: what the wire can carry.
LIMITS = LimitSettings(
    max_memory_limit=BYTES_LIMIT_MAX,
    max_cpu_limit=INT_MAX,
    max_pids_limit=INT_MAX,
    max_output_limit=BYTES_LIMIT_MAX,
    max_disk_limit=BYTES_LIMIT_MAX,
    max_task_size=16252928,
    zip_max_bytes=1 << 20,
    zip_max_files=10,
)


def base_form(**changes: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "user": "7",
        "compile_source_name": "main.c",
        "compile_source_str": "int main(){return 0;}",
        "compile_command": "cc main.c",
        "compile_timeout": "3",
        "execute_input": "1 2",
        "execute_data_name": "raw.dat",
        "execute_data_str": "data",
        "execute_command": "./a.out",
        "execute_timeout": "4",
        "execute_standard": "3",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def names_in(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_parse_int_accepts_range() -> None:
    assert forms.parse_int("x", "0") == 0
    assert forms.parse_int("x", " 42 ") == 42
    assert forms.parse_int("x", str(INT_MAX)) == INT_MAX


@pytest.mark.parametrize(
    "text", [None, "", " ", "-1", "+1", "1.5", "1e3", "abc", "1_000", str(INT_MAX + 1), "9" * 5000]
)
def test_parse_int_rejects(text: str | None) -> None:
    with pytest.raises(InvalidInput):
        forms.parse_int("x", text)


def test_parse_task_from_strings() -> None:
    task = forms.parse_task(base_form(), {}, LIMITS)
    assert task.user == 7
    assert task.compile.command == "cc main.c"
    assert task.compile.timeout == 3
    assert names_in(task.compile.source) == {"main.c": b"int main(){return 0;}"}
    assert names_in(task.execute.data) == {"raw.dat": b"data"}
    assert (task.execute.input, task.execute.command) == ("1 2", "./a.out")
    assert (task.execute.timeout, task.execute.standard) == (4, "3")
    assert task.compile.memory_limit is None and task.execute.cpu_limit is None


def test_upload_overrides_name_and_str() -> None:
    upload = make_zip("other.c", "x")
    task = forms.parse_task(base_form(), {"compile_source": upload, "execute_data": b""}, LIMITS)
    assert task.compile.source == upload
    assert names_in(task.execute.data) == {"raw.dat": b"data"}  # empty upload does not override


def test_no_source_at_all_is_empty() -> None:
    form = base_form(
        compile_source_name=None, compile_source_str=None, execute_data_name="", execute_data_str=""
    )
    task = forms.parse_task(form, {}, LIMITS)
    assert task.compile.source == b"" and task.execute.data == b""


def test_str_without_name_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        forms.parse_task(base_form(compile_source_name=""), {}, LIMITS)


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "dir/"])
def test_bad_source_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        forms.parse_task(base_form(execute_data_name=name), {}, LIMITS)


@pytest.mark.parametrize(
    "missing",
    [
        "user",
        "compile_command",
        "compile_timeout",
        "execute_input",
        "execute_command",
        "execute_timeout",
        "execute_standard",
    ],
)
def test_missing_required_fields(missing: str) -> None:
    with pytest.raises(InvalidInput):
        forms.parse_task(base_form(**{missing: None}), {}, LIMITS)


@pytest.mark.parametrize(
    "field,value",
    [
        ("user", "-1"),
        ("user", "x"),
        ("compile_timeout", str(INT_MAX + 1)),
        ("execute_timeout", "1.5s"),
        ("execute_timeout", "-1"),
        ("execute_timeout", "nan"),
        ("execute_timeout", "0.0001"),
    ],
)
def test_garbled_ints(field: str, value: str) -> None:
    with pytest.raises(InvalidInput):
        forms.parse_task(base_form(**{field: value}), {}, LIMITS)


def test_bad_upload_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        forms.parse_task(base_form(), {"execute_data": b"not a zip"}, LIMITS)


def test_too_large() -> None:
    form = base_form(execute_input="x" * 2000)
    forms.parse_task(form, {}, replace(LIMITS, max_task_size=10_000))
    with pytest.raises(TooLarge):
        forms.parse_task(form, {}, replace(LIMITS, max_task_size=1000))


def test_limits_parsed() -> None:
    form = base_form(
        compile_memory_limit="1048576",
        execute_memory_limit=str(BYTES_LIMIT_MAX),
        execute_cpu_limit="2",
        execute_pids_limit="16",
        execute_output_limit="4096",
        execute_disk_limit="1048576",
    )
    task = forms.parse_task(form, {}, LIMITS)
    assert task.compile.memory_limit == 1048576
    assert task.execute.memory_limit == BYTES_LIMIT_MAX
    assert (task.execute.cpu_limit, task.execute.pids_limit) == (2, 16)
    assert task.execute.output_limit == 4096
    assert task.execute.disk_limit == 1048576
    assert forms.parse_task(base_form(), {}, LIMITS).execute.disk_limit is None


def test_empty_limit_is_unset() -> None:
    task = forms.parse_task(base_form(execute_cpu_limit=""), {}, LIMITS)
    assert task.execute.cpu_limit is None


@pytest.mark.parametrize(
    "field,value",
    [
        ("compile_memory_limit", "0"),
        ("execute_memory_limit", str(BYTES_LIMIT_MAX + 1)),
        ("execute_cpu_limit", str(INT_MAX + 1)),
        ("execute_pids_limit", "-3"),
        ("execute_output_limit", "lots"),
        ("execute_disk_limit", "-1048576"),
        ("execute_disk_limit", "1.5"),
        ("execute_disk_limit", "1MiB"),
        ("execute_disk_limit", "0"),
        ("execute_disk_limit", str(BYTES_LIMIT_MAX + 1)),
    ],
)
def test_bad_limits(field: str, value: str) -> None:
    kind = "a number of seconds" if field == "execute_cpu_limit" else "an integer between 1 and"
    with pytest.raises(InvalidInput, match=f"{field} must be {kind}"):
        forms.parse_task(base_form(**{field: value}), {}, LIMITS)


def test_seconds_may_have_fractions() -> None:
    task = forms.parse_task(base_form(compile_timeout="2.0", execute_timeout=" 1.5 ",
                                      execute_cpu_limit="0.25"), {}, LIMITS)
    assert (task.compile.timeout, task.execute.timeout, task.execute.cpu_limit) == (2, 1.5, 0.25)
    assert isinstance(task.compile.timeout, int)  # 2.0 reads back as 2 (the seed's integers)


def test_limits_beyond_the_policy_are_refused() -> None:
    policy = LimitSettings()
    at_most = {"execute_memory_limit": policy.max_memory_limit, "execute_cpu_limit": 3600,
               "execute_disk_limit": policy.max_disk_limit}
    task = forms.parse_task(base_form(**{k: str(v) for k, v in at_most.items()}), {}, policy)
    assert (task.execute.memory_limit, task.execute.cpu_limit) == (4 * 1024**3, 3600)
    for field, value in at_most.items():
        with pytest.raises(InvalidInput, match=f"{field} must be"):
            forms.parse_task(base_form(**{field: str(value + 1)}), {}, policy)


def test_parse_id() -> None:
    assert forms.parse_id("0123456789abcdef01234567") == "0123456789abcdef01234567"
    for bad in [None, "", "0123456789ABCDEF01234567", "0123456789abcdef0123456", "g" * 24]:
        with pytest.raises(InvalidInput):
            forms.parse_id(bad)


def test_parse_search_defaults() -> None:
    q = forms.parse_search({})
    assert (q.id, q.user, q.start_time, q.end_time) == (None, None, None, None)
    assert (q.old_to_new, q.limit, q.page) == (False, 0, 0)


def test_parse_search_all() -> None:
    q = forms.parse_search(
        {
            "id": "0123456789abcdef01234567",
            "user": "5",
            "start_time": "2020-01-01T00:00:00",
            "end_time": "2020-01-01T23:59:59+08:00",
            "old_to_new": "yes",
            "limit": "10",
            "page": "2",
        }
    )
    assert q.id == "0123456789abcdef01234567" and q.user == 5
    assert q.start_time == "2020-01-01T00:00:00.000000"
    assert q.end_time == canonical_time("2020-01-01T15:59:59") == "2020-01-01T15:59:59.000000"
    assert (q.old_to_new, q.limit, q.page) == (True, 10, 2)


def test_parse_search_empty_values_are_unset() -> None:
    q = forms.parse_search({"id": "", "user": "", "old_to_new": "", "limit": ""})
    assert (q.id, q.user, q.old_to_new, q.limit) == (None, None, False, 0)


@pytest.mark.parametrize(
    "args",
    [
        {"id": "xyz"},
        {"user": "-1"},
        {"start_time": "yesterday"},
        {"end_time": "2020-13-01T00:00:00"},
        {"limit": str(INT_MAX + 1)},
        {"page": "-1"},
    ],
)
def test_parse_search_invalid(args: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        forms.parse_search(args)


def test_parse_file() -> None:
    assert forms.parse_file(None) is None
    assert forms.parse_file("") is None
    for name in forms.ZIP_FILES + forms.TEXT_FILES:
        assert forms.parse_file(name) == name
    with pytest.raises(InvalidInput):
        forms.parse_file("passwd")
