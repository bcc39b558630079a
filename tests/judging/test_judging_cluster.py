"""Judging through a real cluster with real compilers: A+B in C, C++ and Python over weighted
cases, every verdict from a purpose-built program, every comparison mode on edge cases, a
checker program, and the seed API's view of a judged task."""

from __future__ import annotations

import datetime as dt
import signal

import pytest

from khala.errors import InvalidInput
from khala.model import (
    Case,
    Checker,
    Compare,
    CompareMode,
    Compile,
    Execute,
    Status,
    Task,
    Verdict,
)
from tests.judging.conftest import Judging, task_of

pytestmark = pytest.mark.integration  # a real cluster (the `judging` fixture)

A_PLUS_B = {
    "c": ("main.c", '#include <stdio.h>\nint main(void){long long a,b;'
          'if(scanf("%lld %lld",&a,&b)!=2)return 1;printf("%lld\\n",a+b);return 0;}\n'),
    "cpp": ("main.cpp", "#include <iostream>\nint main(){long long a,b;std::cin>>a>>b;"
            'std::cout<<a+b<<"\\n";}\n'),
    "python3": ("main.py", "a, b = map(int, input().split())\nprint(a + b)\n"),
    "java": ("Main.java", "import java.util.*;\npublic class Main{public static void main("
             "String[] x){Scanner s=new Scanner(System.in);long a=s.nextLong(),b=s.nextLong();"
             "System.out.println(a+b);}}\n"),
    "go": ("main.go", 'package main\nimport "fmt"\nfunc main(){var a,b int64\n'
           "fmt.Scan(&a,&b)\nfmt.Println(a+b)}\n"),
    "rust": ("main.rs", "use std::io::*;\nfn main(){let mut s=String::new();stdin()."
             "read_to_string(&mut s).unwrap();let v:Vec<i64>=s.split_whitespace().map(|x|x."
             'parse().unwrap()).collect();println!("{}",v[0]+v[1]);}\n'),
}
WRONG = 6  # the case whose expected answer is wrong


def a_plus_b_cases() -> list[Case]:
    return [Case(input=f"{i} {i * 1000}\n", standard=f"{i * 1001 + (i == WRONG)}\n",
                 weight=i + 1) for i in range(10)]


@pytest.mark.parametrize("language", ["c", "cpp", "python3"])
def test_a_plus_b_per_case_verdicts_and_score(judging: Judging, language: str) -> None:
    assert language in judging.languages, "make test installs gcc, g++ and python3"
    name, source = A_PLUS_B[language]
    done = judging.judge(task_of(language, name, source, a_plus_b_cases()))
    j = done.result.judgement if done.result else None
    assert j is not None, done
    expected = [Verdict.WRONG_ANSWER if i == WRONG else Verdict.ACCEPTED for i in range(10)]
    assert [c.verdict for c in j.cases] == expected
    assert (j.verdict, j.score, j.max_score) == (Verdict.WRONG_ANSWER, 55 - (WRONG + 1), 55)
    assert j.cases[WRONG].message == f"line 1: got '{WRONG * 1001}', expected '{WRONG * 1001 + 1}'"
    assert [c.output for c in j.cases][:2] == ["0\n", "1001\n"]
    assert all(c.time >= 0 and c.memory > 0 for c in j.cases)
    assert j.language == judging.languages[language].version
    # The seed view: the first case, as a single-case task shows it today.
    assert done.status == Status.SUCCESS and done.result is not None
    assert done.result.execute_output == b"0\n"
    assert done.result.execute_report is not None


@pytest.mark.parametrize("language", ["java", "go", "rust"])
def test_other_presets_where_installed(judging: Judging, language: str) -> None:
    if language not in judging.languages:
        pytest.skip(f"{language} is not installed where the sandbox sees it on this host")
    name, source = A_PLUS_B[language]
    task = task_of(language, name, source, a_plus_b_cases()[:3])
    task.compile.timeout = 180  # go builds its standard library afresh: ~20 CPU seconds
    done = judging.judge(task, timeout=300)
    j = done.result.judgement if done.result else None
    assert j is not None and j.verdict == Verdict.ACCEPTED, done.result


VERDICT_PROGRAM = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char cmd[16] = {0};
    if (scanf("%15s", cmd) != 1) return 2;
    if (!strcmp(cmd, "ok")) { puts("42"); return 0; }
    if (!strcmp(cmd, "wrong")) { puts("41"); return 0; }
    if (!strcmp(cmd, "spin")) { volatile unsigned long x = 0; for (;;) x++; }
    if (!strcmp(cmd, "sleep")) { sleep(60); return 0; }
    if (!strcmp(cmd, "alloc")) {
        size_t n = (size_t)512 << 20; char *p = malloc(n);
        if (!p) return 4;
        memset(p, 1, n); printf("%d\n", p[n - 1]); return 0;
    }
    if (!strcmp(cmd, "print")) {
        static char buf[65536]; memset(buf, 'x', sizeof buf);
        for (;;) fwrite(buf, 1, sizeof buf, stdout);
    }
    if (!strcmp(cmd, "nap")) { sleep(2); puts("42"); return 0; }
    if (!strcmp(cmd, "exit3")) return 3;
    if (!strcmp(cmd, "segv")) raise(SIGSEGV);
    return 5;
}
"""


def test_each_verdict_from_a_purpose_built_program(judging: Judging) -> None:
    mib = 1 << 20
    cases = [
        Case("ok", "42"),
        Case("wrong", "42"),
        Case("spin", "42", cpu_limit=1),
        Case("sleep", "42", timeout=1),
        Case("alloc", "42", memory_limit=64 * mib),
        Case("print", "42", output_limit=mib),
        Case("exit3", "42"),
        Case("segv", "42"),
    ]
    done = judging.judge(task_of("c", "main.c", VERDICT_PROGRAM, cases))
    j = done.result.judgement if done.result else None
    assert j is not None
    assert [c.verdict for c in j.cases] == [
        Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.TIME_LIMIT, Verdict.TIME_LIMIT,
        Verdict.MEMORY_LIMIT, Verdict.OUTPUT_LIMIT, Verdict.RUNTIME_ERROR,
        Verdict.RUNTIME_ERROR], j.cases
    assert (j.cases[6].exit_code, j.cases[6].message) == (3, "exit code 3")
    assert j.cases[7].signal == signal.SIGSEGV and j.cases[7].message == "killed by signal 11"
    assert j.cases[2].time >= 1.0
    assert len(j.cases[5].output) <= 64 * 1024  # cut to the executor's case_output_limit
    assert (j.verdict, j.score, j.max_score) == (Verdict.WRONG_ANSWER, 1, 8)


def test_stop_on_failure_skips_the_rest(judging: Judging) -> None:
    cases = [Case("ok", "42"), Case("exit3", "42"), Case("ok", "42")]
    done = judging.judge(task_of("c", "main.c", VERDICT_PROGRAM, cases, stop_on_failure=True))
    j = done.result.judgement if done.result else None
    assert j is not None
    assert [c.verdict for c in j.cases] == [
        Verdict.ACCEPTED, Verdict.RUNTIME_ERROR, Verdict.SKIPPED]
    assert (j.verdict, j.score, j.max_score) == (Verdict.RUNTIME_ERROR, 1, 3)


def test_cases_run_in_parallel_on_free_slots(judging: Judging) -> None:
    """Four cases that each sleep 2 s on an executor with 2 slots: the cases' wall times add up
    to at least 8 s, the task took less — they overlapped."""
    done = judging.judge(task_of("c", "main.c", VERDICT_PROGRAM, [Case("nap", "42")] * 4))
    j = done.result.judgement if done.result else None
    assert j is not None and j.verdict == Verdict.ACCEPTED
    busy = sum(c.wall_time for c in j.cases)
    took = (dt.datetime.fromisoformat(done.report_time)
            - dt.datetime.fromisoformat(done.add_time)).total_seconds()
    assert busy >= 8.0 and took < busy, (busy, took)


def test_compile_error(judging: Judging) -> None:
    done = judging.judge(task_of("c", "main.c", "int main( { return 0; }\n", [Case("1", "1")]))
    assert done.status == Status.COMPILE_FAILED and done.result is not None
    assert b"error" in done.result.compile_error
    j = done.result.judgement
    assert j is not None and j.verdict == Verdict.COMPILE_ERROR and j.compiles == 1
    assert [c.verdict for c in j.cases] == [Verdict.SKIPPED] and j.score == 0


ECHO = "import sys\nsys.stdout.write(sys.stdin.read())\n"  # the output is the case's input


@pytest.mark.parametrize(
    ("compare", "cases"),
    [
        (Compare(mode=CompareMode.EXACT),
         [("5\n", "5\n", True), ("5 \n", "5\n", False), ("a\r\nb\n", "a\nb\n", False)]),
        (None,  # lines, the default
         [("5  \n\n\n", "5", True), ("a\r\nb\r\n", "a\nb", True), ("1  2", "1 2", False)]),
        (Compare(mode=CompareMode.TOKENS),
         [("1   2\r\n\n3", "1 2 3", True), ("1 2", "1 2 3", False)]),
        (Compare(mode=CompareMode.FLOAT),  # default tolerances 1e-6
         [("0.1000000001", "0.1", True), ("1.000000001 2", "1 2", True), ("1.1", "1.0", False)]),
        (Compare(mode=CompareMode.FLOAT, abs_tol=1e-12, rel_tol=0.0),
         [("1.000000001", "1", False), ("1.0", "1", True)]),
    ],
    ids=["exact", "lines", "tokens", "float", "float-tight"],
)
def test_comparison_modes(judging: Judging, compare: Compare | None,
                          cases: list[tuple[str, str, bool]]) -> None:
    task = task_of("python3", "main.py", ECHO, [Case(i, s) for i, s, _ in cases], compare)
    done = judging.judge(task)
    j = done.result.judgement if done.result else None
    assert j is not None
    want = [Verdict.ACCEPTED if ok else Verdict.WRONG_ANSWER for _, _, ok in cases]
    assert [c.verdict for c in j.cases] == want, j.cases


PERMUTATION_CHECKER = """
import sys
inp, out, ans = (open(path).read().split() for path in sys.argv[1:4])
if sorted(out) == sorted(ans):
    sys.exit(0)
sys.stderr.write(f"{out} is not a permutation of {ans}")
sys.exit(1)
"""


def test_checker_accepting_any_permutation(judging: Judging) -> None:
    compare = Compare(mode=CompareMode.CHECKER,
                      checker=Checker(language="python3", source=PERMUTATION_CHECKER))
    cases = [Case("3 1 2\n", "1 2 3\n"), Case("1 2 3", "1 2 3"), Case("1 2 4", "1 2 3")]
    done = judging.judge(task_of("python3", "main.py", ECHO, cases, compare))
    j = done.result.judgement if done.result else None
    assert j is not None
    assert [c.verdict for c in j.cases] == [
        Verdict.ACCEPTED, Verdict.ACCEPTED, Verdict.WRONG_ANSWER]
    assert "is not a permutation" in j.cases[2].message
    assert j.compiles in (0, 1, 2)  # program and checker may come from the cache


def test_a_failing_checker_is_an_internal_error(judging: Judging) -> None:
    compare = Compare(mode=CompareMode.CHECKER,
                      checker=Checker(language="python3", source="import sys\nsys.exit(3)\n"))
    done = judging.judge(task_of("python3", "main.py", ECHO, [Case("1", "1")], compare))
    j = done.result.judgement if done.result else None
    assert j is not None and j.verdict == Verdict.INTERNAL_ERROR
    assert j.cases[0].message.startswith("checker failed")
    assert done.status == Status.UNKNOWN_ERROR


def test_seed_api_shows_the_first_case(judging: Judging) -> None:
    name, source = A_PLUS_B["c"]
    done = judging.judge(task_of("c", name, source, a_plus_b_cases()))
    seed = judging.cluster.get(done.id)
    assert seed["result"] == 0
    assert seed["task"]["status"] == Status.SUCCESS
    assert seed["task"]["result"]["execute_output"] == "0\n"
    assert seed["task"]["result"]["execute"]["reason"] == "ok"


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (Task(compile=Compile(language="cobol"), execute=Execute()), "no language preset"),
        (Task(compile=Compile(language="c", command="gcc main.c"), execute=Execute()),
         "leave them empty"),
        (Task(compile=Compile(language="c"),
              execute=Execute(compare=Compare(mode=CompareMode.CHECKER))), "needs a checker"),
    ],
)
def test_bad_judged_tasks_are_refused(judging: Judging, task: Task, message: str) -> None:
    with pytest.raises(InvalidInput):
        judging.client.add(task)
