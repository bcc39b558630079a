"""Languages through a real cluster: each executor reports the presets it has, judicators
dispatch a task only to an executor that has its language (and its checker's), and the
listing counts them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from khala.model import Case, Checker, Compare, CompareMode, Verdict
from tests.judging.conftest import Judging, client_of, task_of, wait_languages

ECHO_PY = "import sys\nsys.stdout.write(sys.stdin.read())\n"
ECHO_C = ('#include <stdio.h>\nint main(void){int c;while((c=getchar())!=EOF)putchar(c);'
          "return 0;}\n")
CHECKER_C = ('#include <stdio.h>\nint main(int n,char**v){FILE*o=fopen(v[2],"r"),*a=fopen(v[3],'
             '"r");int x,y;if(fscanf(o,"%d",&x)!=1||fscanf(a,"%d",&y)!=1)return 1;'
             "return x==y?0:1;}\n")


def test_dispatch_only_to_executors_with_the_language(cluster_factory: Callable[..., Any]
                                                      ) -> None:
    cluster = cluster_factory()
    cluster.start_judicator()
    c_only = cluster.start_executor(slots=2, languages="c")
    py_only = cluster.start_executor(slots=2, languages="python3")
    client = client_of(cluster)
    try:
        listed = wait_languages(client, {"c", "python3"})
        assert set(listed) == {"c", "python3"}
        assert listed["c"].executors == listed["python3"].executors == 1
        judging = Judging(cluster, client, cluster.tmp, listed)
        names = {c_only.argv[c_only.argv.index("--name") + 1]: "c",
                 py_only.argv[py_only.argv.index("--name") + 1]: "python3"}
        for _ in range(3):
            for language, name, source in (("c", "main.c", ECHO_C),
                                           ("python3", "main.py", ECHO_PY)):
                done = judging.judge(task_of(language, name, source, [Case("7", "7")]))
                assert names[done.executor or ""] == language
                assert done.result and done.result.judgement
                assert done.result.judgement.verdict == Verdict.ACCEPTED
        # A C program checked by a C checker runs on the C executor; a Python program with a
        # C checker needs both languages, which no executor has here: it waits, queued.
        checked = Compare(mode=CompareMode.CHECKER, checker=Checker("c", CHECKER_C))
        done = judging.judge(task_of("c", "main.c", ECHO_C, [Case("7", "7")], checked))
        assert names[done.executor or ""] == "c"
        waiting = client.add(task_of("python3", "main.py", ECHO_PY, [Case("7", "7")], checked))
        # A later Python task is judged: had the older one been eligible, it went first.
        judging.judge(task_of("python3", "main.py", ECHO_PY, [Case("1", "1")]))
        stuck = client.get(waiting)
        assert not stuck.done and stuck.executor is None
    finally:
        client.close()
