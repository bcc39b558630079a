"""`make bench` / `python -m benchmarks [--quick] [--all] [--only NAME,…]`: each figure with its
baseline measured in the same run and the ratio, then a Markdown table.

By default the figures of the current targets (docs/performance.md): judge (a 50-case A+B and
50 cases of 1 MB through API v2 ÷ plain subprocesses), interactive (1,000 rounds through an
interactor ÷ two plain processes on a pipe pair), http (trivial task POST→done on `khala
up` ÷ bash + one HTTP round trip), throughput (32 clients ÷ a raw sandbox loop), gateway
(GET /api/task of a finished task ÷ /api/test), recompile (a Go and a Rust hello world compiled
in the judge image ÷ the same compiler outside the sandbox; needs `make images`). `--all` adds
the earlier ones: mongo (the trivial task on FerretDB, two judicators), sandbox (cost per step
over bare fork/exec), search (many stored tasks), judicator (CPU per report as executors grow;
dispatch with many pending), fleet (10 → 1,000 simulated executors over Thrift with node auth,
on SQLite and FerretDB), day (one 50-case submission's CPU, traffic and store bytes, stored vs
inline, scaled to 100,000).
Pass options through make: `make bench BENCH_ARGS=--quick`. Every loop is bounded (a count or
a duration).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import traceback

from benchmarks import common

FIGURES = ["judge", "interactive", "http", "throughput", "gateway", "recompile"]
EARLIER = ["mongo", "sandbox", "search", "judicator", "fleet", "day"]


def run_figure(name: str, args: argparse.Namespace) -> None:
    from benchmarks import (
        day,
        fleet,
        gateway,
        interactive,
        judge,
        latency,
        recompile,
        sandbox,
        store,
    )

    table = {"judge": judge.figure_judge, "interactive": interactive.figure_interactive,
             "http": latency.figure_http,
             "mongo": latency.figure_mongo,
             "sandbox": sandbox.figure_sandbox, "throughput": sandbox.figure_throughput,
             "gateway": gateway.figure_gateway, "search": store.figure_search,
             "judicator": store.figure_judicator, "fleet": fleet.figure_fleet,
             "day": day.figure_day, "recompile": recompile.figure_recompile}
    table[name](args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="",
                        help="comma-separated figures (default: " + ",".join(FIGURES) + ")")
    parser.add_argument("--all", action="store_true",
                        help="also the earlier figures: " + ",".join(EARLIER))
    parser.add_argument("--quick", action="store_true",
                        help="smaller counts, stores and durations (development)")
    parser.add_argument("--ferret-handler", default="auto",
                        choices=["auto", "sqlite", "postgresql"],
                        help="FerretDB handler; auto = postgresql when installed")
    parser.add_argument("--fleet-stores", default="sqlite,ferretdb",
                        help="the stores of the fleet figure (comma list)")
    args = parser.parse_args()
    args.tasks = 40 if args.quick else 200
    args.runs = 100 if args.quick else 500
    args.seconds = 8.0 if args.quick else 30.0
    chosen = [f.strip() for f in args.only.split(",") if f.strip()] or (
        FIGURES + EARLIER if args.all else FIGURES)
    unknown = [f for f in chosen if f not in FIGURES + EARLIER]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; known: "
                     f"{', '.join(FIGURES + EARLIER)}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=common.REPO, check=False).stdout.strip()
    print(f"khala benchmarks {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
          + (" (quick)" if args.quick else ""), flush=True)
    failed = []
    for name in chosen:
        print(f"\n[{name}]", flush=True)
        try:
            run_figure(name, args)
        except Exception:  # one broken figure must not hide the others
            traceback.print_exc()
            failed.append(name)
    common.print_table()
    if failed:
        print(f"\nfigures that could not be measured: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
