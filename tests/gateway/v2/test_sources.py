"""The pure parts of the judge front end's v2 routes (khala/gateway/v2/sources.py) and of the
CLI's judging (khala/cli/judge.py, khala/cli/show.py), and the seconds of the limits policy
(khala/rules/seconds.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from khala.cli.judge import UsageError, cases_from_dir, judged_body, parse_seconds, parse_size
from khala.cli.show import judgement_text, verdict_line
from khala.config import LimitSettings
from khala.gateway.v2.sources import MAX_SHOWN, unpack_files
from khala.rules.seconds import cpu_time, from_wire, wall_time, wire_exact, wire_whole
from khala.zipcheck import make_zip_files


def test_unpack_files_text_binary_and_cut() -> None:
    big = ("é" * MAX_SHOWN).encode()
    files = unpack_files(make_zip_files([("src/main.c", b"int main(){}"), ("b.bin", b"\xff\x00"),
                                         ("big.txt", big)]))
    by_path = {f["path"]: f for f in files}
    assert by_path["src/main.c"] == {"path": "src/main.c", "size": 12, "content": "int main(){}",
                                     "encoding": "text", "cut": False}
    assert by_path["b.bin"]["encoding"] == "base64" and by_path["b.bin"]["content"] == "/wA="
    cut = by_path["big.txt"]
    assert cut["cut"] and cut["encoding"] == "text" and cut["size"] == len(big)
    assert set(cut["content"]) == {"é"} and len(cut["content"].encode()) <= MAX_SHOWN
    assert unpack_files(b"") == []


def test_cli_sizes_seconds_and_cases(tmp_path: Path) -> None:
    assert [parse_size(t) for t in ("256M", "1G", "64KiB", "4096", "1.5m")] == [
        256 << 20, 1 << 30, 64 << 10, 4096, int(1.5 * (1 << 20))]
    for bad in ("lots", "-1M", "0"):
        with pytest.raises(UsageError):
            parse_size(bad)
    assert (parse_seconds("2"), parse_seconds("1.5")) == (2, 1.5)
    with pytest.raises(UsageError):
        parse_seconds("0")
    for name, text in (("2.in", "b"), ("2.ans", "B"), ("10.in", "c"), ("10.out", "C"),
                       ("1.in", "a"), ("1.out", "A"), ("notes.txt", "x")):
        (tmp_path / name).write_text(text)
    assert cases_from_dir(str(tmp_path)) == [{"input": "a", "standard": "A"},
                                            {"input": "b", "standard": "B"},
                                            {"input": "c", "standard": "C"}]
    (tmp_path / "3.in").write_text("lonely")
    with pytest.raises(UsageError, match="case 3 needs 3.in and 3.out"):
        cases_from_dir(str(tmp_path))
    body = judged_body("c", [{"path": "main.c", "content": ""}], [{"input": "", "standard": ""}],
                       1.5, 64 << 20, "tokens")
    assert body["execute"]["cpu_limit"] == 1.5 and body["execute"]["timeout"] == 4
    assert body["execute"]["compare"] == {"mode": "tokens"}


def test_verdict_lines_and_the_table() -> None:
    def case(verdict: str, message: str = "") -> dict[str, object]:
        return {"verdict": verdict, "time": 0.5, "memory": 2 << 20, "message": message}

    judgement = {"verdict": "time_limit", "score": 1, "max_score": 3, "language": "gcc 12",
                 "message": "", "cases": [case("accepted"), case("time_limit", "too slow"),
                                          case("skipped")]}
    assert verdict_line(judgement) == "Time limit exceeded on case 2"
    assert verdict_line({**judgement, "verdict": "compile_error"}) == "Compile error"
    text = judgement_text({"id": "t1", "compile": {"language": "c"},
                           "result": {"judgement": judgement}})
    assert text.splitlines() == [
        "t1  Time limit exceeded on case 2",
        "score 1/3  time 0.500 s  memory 2.0 MiB  c gcc 12",
        "case  verdict              time     memory   message",
        "1     Accepted             0.500 s  2.0 MiB",
        "2     Time limit exceeded  0.500 s  2.0 MiB  too slow",
        "3     Skipped              -        -",
    ]


def test_seconds_defaults_caps_and_wire() -> None:
    policy = LimitSettings(default_timeout=2.5, max_timeout=10, default_cpu_limit=1.5)
    assert (wall_time(0, policy), wall_time(None, policy), wall_time(4, policy)) == (2.5, 2.5, 4)
    assert wall_time(1e9, policy) == 10
    assert (cpu_time(None, policy), cpu_time(0.25, policy)) == (1.5, 0.25)
    for value in (0, 2, 1.5, 0.001, None):
        assert from_wire(wire_whole(value), wire_exact(value)) == value
    assert (wire_whole(1.2), wire_exact(1.2), wire_exact(3.0)) == (2, 1.2, None)
