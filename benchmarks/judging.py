"""Judging throughput: cases per second for a 50-case A+B task in C on a local cluster, cold
(the compile step runs) and warm (the compile cache answers), with the cases of a task on one
slot and spread over two.

    make bench            # or: .venv/bin/python -m benchmarks.judging --rounds 5

Times are the judicator's own (add_time → report_time of the result); cases/s = 50 / that.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from khala.discovery.static import StaticDiscovery
from khala.model import Case, Compile, Execute, Task, Verdict
from khala.rpc.client import JudicatorClient
from khala.zipcheck import make_zip
from tests.fixtures.cluster import Cluster

CASES = 50
A_PLUS_B = ('#include <stdio.h>\nint main(void){long long a,b;'
            'if(scanf("%lld %lld",&a,&b)!=2)return 1;printf("%lld\\n",a+b);return 0;}\n')


def task(source: str) -> Task:
    cases = [Case(f"{i} {i * 7}", f"{i * 8}") for i in range(CASES)]
    return Task(user=0, compile=Compile(source=make_zip("main.c", source), timeout=60,
                                        language="c"),
                execute=Execute(timeout=5, cases=cases))


def judge_seconds(client: JudicatorClient, source: str) -> tuple[float, bool]:
    """(seconds from add to result by the judicator's clock, cache hit)."""
    task_id = client.add(task(source))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = client.get(task_id)
        if done.done:
            j = done.result.judgement if done.result else None
            assert j is not None and j.verdict == Verdict.ACCEPTED, done.result
            took = dt.datetime.fromisoformat(done.report_time) - dt.datetime.fromisoformat(
                done.add_time)
            return took.total_seconds(), j.cache_hit
        time.sleep(0.01)
    raise TimeoutError(f"task {task_id} not judged in 300 s")


def measure(slots: int, parallelism: int, rounds: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start_judicator()
            cluster.start_executor(slots=slots, case_parallelism=parallelism)
            client = JudicatorClient(StaticDiscovery([cluster.judicator_address]), 30.0)
            while not client.languages():
                time.sleep(0.1)
            cold, warm = [], []
            for _ in range(rounds):
                source = f"// {uuid.uuid4()}\n{A_PLUS_B}"
                seconds, hit = judge_seconds(client, source)
                assert not hit
                cold.append(seconds)
                seconds, hit = judge_seconds(client, source)
                assert hit
                warm.append(seconds)
            client.close()
            return cold, warm
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="cold + warm tasks per setup")
    args = parser.parse_args()
    print(f"judging: a {CASES}-case A+B task in C, median of {args.rounds} "
          "(judicator add → result)")
    for slots, parallelism, label in ((1, 1, "1 slot"), (2, 0, "2 slots, cases in parallel")):
        cold, warm = measure(slots, parallelism, args.rounds)
        for name, times in (("cold (compile)", cold), ("warm (cache hit)", warm)):
            median = statistics.median(times)
            print(f"  {label:28} {name:17} {median:6.2f} s  {CASES / median:7.1f} cases/s")


if __name__ == "__main__":
    main()
