"""Problem packages read into versions (pure): Khala's layout (problem.toml, tests/, groups by
folder, jury programs, extra files), Polygon's (problem.xml: tests by pattern, groups and
points, checker, interactor, resources; what is left out, what is refused and why), the spec
document and its checks."""

from __future__ import annotations

import io

import pytest

from khala.config import LimitSettings
from khala.errors import InvalidInput
from khala.model import CompareMode, GroupPolicy
from khala.problems.package import Package, open_package, parse_size, read_khala
from khala.problems.polygon import read_polygon
from khala.problems.spec import check_spec, spec_bytes, spec_from_bytes, summary
from khala.problems.upload import read_package
from tests.problems.packages import AB_TOML, TOKEN_CHECKER, ab_package, zipped


def package(files: dict[str, bytes], top: str = "") -> Package:
    return open_package(io.BytesIO(zipped(files, top)), 1 << 30, 10_000)


def test_khala_layout_reads_tests_limits_and_a_checker() -> None:
    files = ab_package(12, extra={"checker.cpp": TOKEN_CHECKER.encode(),
                                  "files/grader.h": b"#define N 1\n"})
    spec = read_package(package(files, top="ab/"), "ab")  # one top folder is looked through
    assert [c.name for c in spec.cases][:3] == ["01", "02", "03"]
    assert [c.name for c in spec.cases][-1] == "12" and len(spec.cases) == 12
    assert spec.title == "A plus B" and spec.mode == CompareMode.TOKENS
    assert (spec.limits.time, spec.limits.memory, spec.limits.output) == (2.0, 256 << 20, 1 << 20)
    assert spec.limits.cpu_seconds("python3") == 4.0 and spec.limits.cpu_seconds("c") == 2.0
    assert spec.checker is not None and spec.checker.language == "cpp"
    assert [f.path for f in spec.files] == ["grader.h"]
    check_spec(spec, LimitSettings())
    again = spec_from_bytes(spec_bytes(spec))
    assert again == spec and spec_bytes(again) == spec_bytes(spec)
    assert summary(spec)["cases"] == 12 and summary(spec)["checker"] == "cpp"


def test_groups_by_folder_in_the_order_problem_toml_gives() -> None:
    toml = "skip_failed_groups = true\n" + AB_TOML + """
[[groups]]
name = "small"
points = 30
policy = "min"
[[groups]]
name = "big"
points = 70
deps = ["small"]
[weights]
"big/2" = 3
"""
    files = {"problem.toml": toml.encode()}
    for group, names in (("big", ["10", "2"]), ("small", ["1"])):
        for name in names:
            files[f"tests/{group}/{name}.in"] = b"1 1\n"
            files[f"tests/{group}/{name}.out"] = b"2\n"
    spec = read_khala(package(files), "g")
    assert [(c.name, c.group, c.weight) for c in spec.cases] == [
        ("small/1", "small", 1), ("big/2", "big", 3), ("big/10", "big", 1)]
    assert spec.groups[0].policy == GroupPolicy.MIN and spec.groups[1].deps == ["small"]
    assert spec.skip_failed_groups
    check_spec(spec, LimitSettings())


@pytest.mark.parametrize(("files", "message"), [
    ({"tests/1.in": b"x"}, "problem.toml"),
    ({"problem.toml": b"title = 'x'", "tests/1.in": b"x"}, "has no answer"),
    ({"problem.toml": b"[limits]\nmemory = 'lots'", "tests/1.in": b"", "tests/1.ans": b""},
     "no size"),
    ({"problem.toml": b"title = [", "tests/1.in": b""}, "problem.toml"),
    ({"problem.toml": b"", "tests/1.in": b"", "tests/1.ans": b"", "checker.cpp": b"x",
      "checker.py": b"x"}, "several checker files"),
    ({"problem.toml": b"[checker]\npath = 'nope.cpp'", "tests/1.in": b"", "tests/1.ans": b""},
     "not in the package"),
    ({"problem.toml": b"", "tests/a/b/1.in": b"", "tests/a/b/1.ans": b""}, "one level deep"),
])
def test_khala_layout_refusals_say_why(files: dict[str, bytes], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read_package(package(files), "p")


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: setattr(s.limits, "time", 0), "limits.time"),
    (lambda s: setattr(s.limits, "memory", 1 << 40), "limits.memory"),
    (lambda s: s.limits.time_factors.update(cobol=2.0), "time factor"),
    (lambda s: setattr(s, "cases", []), "at least one test case"),
    (lambda s: setattr(s.cases[0], "group", "nope"), "group"),
    (lambda s: setattr(s, "problem", "bad id!"), "problem id"),
])
def test_spec_checks(change: object, message: str) -> None:
    spec = read_khala(package(ab_package(2)), "ab")
    change(spec)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match=message):
        check_spec(spec, LimitSettings())


def test_sizes() -> None:
    assert parse_size("256M", "x") == 256 << 20 and parse_size("1GiB", "x") == 1 << 30
    assert parse_size(1234, "x") == 1234 and parse_size("64k", "x") == 64 << 10


# ----------------------------------------------------------------------------- Polygon

PROBLEM_XML = """<?xml version="1.0" encoding="utf-8"?>
<problem revision="7" short-name="aplusb">
  <names><name language="russian" value="А+Б"/><name language="english" value="A+B"/></names>
  <judging cpu-name="Intel" cpu-speed="3600" input-file="" output-file="">
    <testset name="pretests"><time-limit>1000</time-limit><memory-limit>1</memory-limit>
      <test-count>0</test-count><input-path-pattern>pre/%02d</input-path-pattern>
      <answer-path-pattern>pre/%02d.a</answer-path-pattern><tests/></testset>
    <testset name="tests">
      <time-limit>1500</time-limit><memory-limit>268435456</memory-limit>
      <test-count>4</test-count>
      <input-path-pattern>tests/%02d</input-path-pattern>
      <answer-path-pattern>tests/%02d.a</answer-path-pattern>
      <tests>
        <test method="manual" sample="true" group="samples" points="0"/>
        <test method="generated" cmd="gen 1" group="first" points="10"/>
        <test method="generated" cmd="gen 2" group="first" points="10"/>
        <test method="generated" cmd="gen 3" group="second" points="0.5"/>
      </tests>
      <groups>
        <group feedback-policy="points" name="samples" points="0" points-policy="each-test"/>
        <group feedback-policy="icpc" name="first" points-policy="complete-group">
          <dependencies><dependency group="samples"/></dependencies></group>
        <group name="second" points-policy="each-test"/>
      </groups>
    </testset>
  </judging>
  <files>
    <resources><file path="files/olymp.sty"/><file path="files/testlib.h" type="h.g++"/>
    </resources>
    <executables><executable><source path="files/gen.cpp" type="cpp.g++17"/></executable>
    </executables>
  </files>
  <assets>
    <checker name="std::wcmp.cpp" type="testlib">
      <source path="files/check.cpp" type="cpp.g++17"/><copy path="check.cpp"/>
    </checker>
    <validators><validator><source path="files/val.cpp" type="cpp.g++17"/></validator>
    </validators>
    <solutions><solution tag="main"><source path="solutions/a.cpp" type="cpp.g++17"/>
    </solution></solutions>
  </assets>
</problem>
"""


def polygon_files(xml: str = PROBLEM_XML, tests: int = 4) -> dict[str, bytes]:
    files = {"problem.xml": xml.encode(), "files/check.cpp": TOKEN_CHECKER.encode(),
             "files/testlib.h": b"// a header\n", "files/olymp.sty": b"%\n",
             "files/gen.cpp": b"int main(){}", "solutions/a.cpp": b"int main(){}"}
    for i in range(1, tests + 1):
        files[f"tests/{i:02d}"] = f"{i} {i}\n".encode()
        files[f"tests/{i:02d}.a"] = f"{2 * i}\n".encode()
    return files


def test_polygon_maps_tests_groups_points_checker_and_resources() -> None:
    spec = read_package(package(polygon_files()), "aplusb")
    assert spec.origin == "polygon" and spec.title == "A+B"
    assert (spec.limits.time, spec.limits.memory) == (1.5, 268435456)
    assert [(c.name, c.group, c.weight) for c in spec.cases] == [
        ("01", "samples", 0), ("02", "first", 10), ("03", "first", 10), ("04", "second", 1)]
    groups = {g.name: g for g in spec.groups}
    assert groups["first"].policy == GroupPolicy.MIN and groups["first"].points == 20
    assert groups["first"].deps == ["samples"] and groups["second"].points == 0.5
    assert spec.checker is not None and spec.checker.language == "cpp"
    assert sorted(f.path for f in spec.files) == ["olymp.sty", "testlib.h"]
    notes = " | ".join(spec.notes)
    for left in ("pretests", "gen.cpp", "validators", "solutions", "feedback policy"):
        assert left in notes
    check_spec(spec, LimitSettings())


def test_polygon_points_without_groups_become_one_exact_group() -> None:
    xml = PROBLEM_XML.replace('group="samples" ', "").replace('group="first" ', "").replace(
        'group="second" ', "")
    xml = xml[:xml.index("<groups>")] + xml[xml.index("</groups>") + len("</groups>"):]
    spec = read_polygon(package(polygon_files(xml)), "p")
    assert [g.name for g in spec.groups] == ["tests"] and spec.groups[0].points == 20.5
    assert [c.weight for c in spec.cases] == [0, 20, 20, 1]  # in the points' proportions
    check_spec(spec, LimitSettings())


@pytest.mark.parametrize(("xml_change", "files_change", "message"), [
    (lambda x: x.replace('output-file=""', 'output-file="out.txt"'), None, "reads or writes"),
    (None, lambda f: f.pop("tests/03"), "generated test: export the full package"),
    (None, lambda f: f.pop("tests/02.a"), r"answer tests/02\.a is not in the package"),
    (lambda x: x.replace('"files/check.cpp" type="cpp.g++17"', '"files/check.cpp" '
                         'type="pascal.fpc"'), None, "no Khala language preset"),
    (lambda x: x.replace('points-policy="each-test"/>', 'points-policy="best"/>'), None,
     "points policy"),
    (lambda x: x.replace("<?xml version=\"1.0\" encoding=\"utf-8\"?>",
                         "<?xml version=\"1.0\"?><!DOCTYPE p [<!ENTITY a \"b\">]>"), None, "DTD"),
])
def test_polygon_refusals_say_why(xml_change: object, files_change: object,
                                  message: str) -> None:
    xml = xml_change(PROBLEM_XML) if xml_change else PROBLEM_XML  # type: ignore[operator]
    files = polygon_files(xml)
    if files_change:
        files_change(files)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match=message):
        read_package(package(files), "p")
