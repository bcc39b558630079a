"""The compile cache through a real cluster: 50 cases compile once, an identical submission
compiles nothing, and poisoning fails — a cached file changed on disk, and a program that
rewrites its own file while it runs."""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from pathlib import Path

import pytest

from khala.model import Case, Judgement, Status, Task, Verdict
from tests.judging.conftest import Judging, task_of

pytestmark = pytest.mark.integration  # a real cluster (the `judging` fixture)

A_PLUS_B_C = ('#include <stdio.h>\nint main(void){long long a,b;'
              'if(scanf("%lld %lld",&a,&b)!=2)return 1;printf("%lld\\n",a+b);return 0;}\n')


def unique(source: str, comment: str = "//") -> str:
    """The same program with a fresh comment, so no earlier test's cache entry matches."""
    return f"{comment} {uuid.uuid4()}\n{source}"


def fifty_cases() -> list[Case]:
    return [Case(f"{i} {i * 3}", f"{i * 4}") for i in range(50)]


def judgement_of(done: Task) -> Judgement:
    assert done.result is not None and done.result.judgement is not None, done
    return done.result.judgement


def entries(cache_dir: Path) -> set[str]:
    return {n for n in os.listdir(cache_dir) if not n.startswith(".")}


def test_fifty_cases_compile_once_then_hit_the_cache(judging: Judging) -> None:
    source = unique(A_PLUS_B_C)
    first = judgement_of(judging.judge(task_of("c", "main.c", source, fifty_cases())))
    assert (first.verdict, first.score, first.max_score) == (Verdict.ACCEPTED, 50, 50)
    assert (first.compiles, first.cache_hit) == (1, False)
    again = judging.judge(task_of("c", "main.c", source, fifty_cases()))
    second = judgement_of(again)
    assert (second.compiles, second.cache_hit) == (0, True)
    assert again.result is not None and again.result.compile_report is None  # no compile step
    assert (second.verdict, second.score) == (Verdict.ACCEPTED, 50)
    # A different compile input (one more source file) is another entry.
    other = task_of("c", "main.c", source, fifty_cases()[:2])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("main.c", source)
        archive.writestr("notes.txt", "another file")
    other.compile.source = buf.getvalue()
    third = judgement_of(judging.judge(other))
    assert (third.compiles, third.cache_hit) == (1, False)


def test_a_cached_file_changed_on_disk_is_not_used(judging: Judging) -> None:
    source = unique(A_PLUS_B_C)
    before = entries(judging.cache_dir)
    first = judgement_of(judging.judge(task_of("c", "main.c", source, fifty_cases()[:3])))
    assert first.cache_hit is False and first.verdict == Verdict.ACCEPTED
    [entry] = entries(judging.cache_dir) - before
    binary = judging.cache_dir / entry / "main"
    # Poison: a program that answers 0 to everything, in place of the cached one.
    (judging.cache_dir / entry).chmod(0o755)
    binary.chmod(0o755)
    binary.write_bytes(b"#!/bin/sh\necho 0\n")
    done = judging.judge(task_of("c", "main.c", source, fifty_cases()[:3]))
    again = judgement_of(done)
    assert (again.cache_hit, again.compiles) == (False, 1)  # dropped and compiled afresh
    assert [c.verdict for c in again.cases] == [Verdict.ACCEPTED] * 3
    assert done.result is not None and done.result.compile_report is not None
    healed = judgement_of(judging.judge(task_of("c", "main.c", source, fifty_cases()[:3])))
    assert (healed.cache_hit, healed.verdict) == (True, Verdict.ACCEPTED)
    assert binary.read_bytes().startswith(b"\x7fELF")


SELF_REWRITING = """
import os
with open(os.path.abspath(__file__), "w") as me:  # poison attempt: replace my own file
    me.write("print(0)\\n")
a, b = map(int, input().split())
print(a + b)
"""


def test_a_program_rewriting_its_own_file_poisons_nothing(judging: Judging) -> None:
    source = unique(SELF_REWRITING, "#")
    cases = fifty_cases()[1:6]
    first = judgement_of(judging.judge(task_of("python3", "main.py", source, cases)))
    # Every case ran a fresh copy: none saw the rewritten file.
    assert [c.verdict for c in first.cases] == [Verdict.ACCEPTED] * 5, first.cases
    done = judging.judge(task_of("python3", "main.py", source, cases))
    second = judgement_of(done)
    assert second.cache_hit is True
    assert [c.verdict for c in second.cases] == [Verdict.ACCEPTED] * 5
    assert done.status == Status.SUCCESS
