"""The pure parts of the Duxcore adapter: a service's params as a job's template, the stats
document from cgroup counters (null where none were reported), the bind contents' tar checks."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.gateway.duxcore.bind import tar_to_zip
from khala.gateway.duxcore.spec import (
    Params,
    Record,
    check_params,
    job_name,
    record_of,
    spec_of,
)
from khala.gateway.duxcore.stats import stats_document

POLICY = LimitSettings(run_users="guest=1234:1235", run_groups="guests=1235")


def record(**params: object) -> Record:
    base = {"id": "svc", "image": "tiny:2", "bind_dir": "/srv/svc", "cmd": ["sleep", "9"]}
    return Record(id="svc", params=Params.model_validate({**base, **params}).model_dump(),
                  env={"A": "1"})


def test_a_service_is_a_stopped_once_job_with_its_params_in_the_template() -> None:
    made = spec_of(record(max_cpu=25_000, max_ram=1 << 20, user="guest:guests",
                          hostname="web", network_disabled=False, working_dir="app"),
                   POLICY, 7, b"zip")
    assert (made.name, made.type, made.replica, made.retry_attempts) == (
        job_name("svc"), "once", 1, 0)
    e = made.template.execute
    assert e.command == "exec sleep 9" and e.data == b"zip" and e.interactive
    assert (e.run_uid, e.run_gid, e.memory_limit) == (1234, 1235, 1 << 20)
    assert (e.timeout, e.cpu_limit) == (POLICY.max_timeout, POLICY.max_cpu_limit)
    o = e.options
    assert (o.cpu_rate, o.hostname, o.network, o.workdir, o.env) == (0.25, "web", True, "app",
                                                                    {"A": "1"})
    assert e.image is not None and (e.image.name, e.image.version) == ("tiny", 2)
    assert made.template.user == 7
    assert record_of(made.meta) == record(max_cpu=25_000, max_ram=1 << 20, user="guest:guests",
                                          hostname="web", network_disabled=False,
                                          working_dir="app")


def test_defaults_no_network_and_the_bind_directory_as_working_directory() -> None:
    e = spec_of(record(shell=["/bin/sh", "-c"], cmd=["echo $HOME", "x"]), POLICY, 0,
                b"").template.execute
    assert e.command == "exec /bin/sh -c 'echo $HOME x'"
    assert e.options.network is False and e.options.workdir == "data"
    assert e.run_uid is None and e.options.hostname == ""


@pytest.mark.parametrize(("params", "words"), [
    ({"bind_contents": "https://x/y.tar.gz"}, "fetches no URL"),
    ({"port_map": {"80/tcp": {"HostPort": "80"}}}, "publishes no host ports"),
    ({"tty": True}, "no terminal"),
    ({"cmd": []}, "cmd is required"),
    ({"max_cpu": 999}, "max_cpu must be within 1000.."),
    ({"max_ram": POLICY.max_memory_limit + 1}, "max_ram must be at most"),
    ({"hostname": "a_b"}, "hostname must be a host name"),
    ({"working_dir": "../up"}, "outside the work area"),
    ({"image": "Bad Name"}, "an image name is"),
    ({"shell": []}, "shell must name a program"),
])
def test_what_khala_cannot_do_is_refused_by_name(params: dict[str, object], words: str) -> None:
    base = {"id": "s", "image": "tiny", "bind_dir": "/srv", "cmd": ["true"]}
    with pytest.raises(InvalidInput) as refused:
        check_params(Params.model_validate({**base, **params}), POLICY)
    assert words in str(refused.value)


def test_a_user_outside_the_table_is_refused() -> None:
    with pytest.raises(InvalidInput, match="user 'root' is not one"):
        spec_of(record(user="root"), POLICY, 0, b"")


def test_job_names_are_valid_and_stable_for_any_id() -> None:
    names = {job_name(i) for i in ("a", "a/b c", "ü" * 200, "a.")}
    assert len(names) == 4 and all(len(n) == 27 and n.startswith("dx-") for n in names)
    assert job_name("a") == job_name("a")


def test_stats_show_what_was_reported_and_null_for_the_rest() -> None:
    counters = {"pids/current": 3, "pids/limit": 64, "memory/usage": 5000,
                "memory/limit": 1 << 20, "memory/stat/rss": 4096, "cpu/total_ns": 10,
                "cpu/user_ns": 6, "cpu/system_ns": 4, "cpu/periods": 2,
                "cpu/throttled_periods": 1, "cpu/throttled_ns": 7, "blkio/8:0/read": 9}
    doc = stats_document("svc", counters, "2026-12-06 10:00:00.000001")
    assert doc["read"] == "2026-12-06T10:00:00.000001Z"
    assert doc["pids_stats"] == {"current": 3, "limit": 64}
    m = doc["memory_stats"]
    assert (m["usage"], m["limit"], m["stats"], m["failcnt"]) == (5000, 1 << 20, {"rss": 4096},
                                                                   None)
    assert doc["cpu_stats"]["cpu_usage"] == {"percpu_usage": None, "usage_in_usermode": 6,
                                             "total_usage": 10, "usage_in_kernelmode": 4}
    assert doc["cpu_stats"]["throttling_data"] == {"periods": 2, "throttled_periods": 1,
                                                   "throttled_time": 7}
    assert doc["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 9}]
    assert doc["networks"] is None and doc["precpu_stats"]["cpu_usage"]["total_usage"] is None
    idle = stats_document("svc", None, "2026-12-06 10:00:00.000001")
    assert idle["pids_stats"] is None and idle["memory_stats"]["usage"] is None
    assert idle["cpu_stats"]["throttling_data"] is None
    assert idle["blkio_stats"]["io_service_bytes_recursive"] is None


def tar(members: list[tarfile.TarInfo], data: bytes = b"x") -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for info in members:
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    out.seek(0)
    return out


def info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 1, mode: int = 0o644,
         link: str = "") -> tarfile.TarInfo:
    made = tarfile.TarInfo(name)
    made.type, made.size, made.mode, made.linkname = kind, size, mode, link
    return made


def test_a_tar_becomes_the_zip_of_its_files_and_directories() -> None:
    data, files = tar_to_zip(tar([info("./d", tarfile.DIRTYPE, 0, 0o755), info("d/run.sh",
                                                                                mode=0o755),
                                  info("plain.txt")]), 1 << 20, 10)
    assert files == 3
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert sorted(z.namelist()) == ["d/", "d/run.sh", "plain.txt"]
        assert z.read("d/run.sh") == b"x"
        assert (z.getinfo("d/run.sh").external_attr >> 16) & 0o111
        assert not (z.getinfo("plain.txt").external_attr >> 16) & 0o111


@pytest.mark.parametrize(("member", "words"), [
    (info("/etc/passwd"), "not a relative name"),
    (info("a/../../x"), "'..' component"),
    (info("l", tarfile.SYMTYPE, 0, link="/etc"), "is a link"),
    (info("h", tarfile.LNKTYPE, 0, link="a"), "is a link"),
    (info("dev", tarfile.CHRTYPE, 0), "device or special file"),
])
def test_what_a_work_area_cannot_hold_is_refused(member: tarfile.TarInfo, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        tar_to_zip(tar([member]), 1 << 20, 10)


def test_the_bounds_and_a_non_tar_are_refused() -> None:
    with pytest.raises(InvalidInput, match="more than 1 members"):
        tar_to_zip(tar([info("a"), info("b")]), 1 << 20, 1)
    with pytest.raises(InvalidInput, match="or 10 bytes"):
        tar_to_zip(tar([info("a", size=11)], b"x" * 11), 10, 5)
    with pytest.raises(InvalidInput, match="not a readable tar"):
        tar_to_zip(io.BytesIO(b"this is no tar at all" * 50), 1 << 20, 5)
