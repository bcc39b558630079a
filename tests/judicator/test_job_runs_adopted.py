"""The scheduler adopts the runs it submitted, whatever the template holds: a judged template
with cases, a checker, limits and archives comes back from the job's stored spec and from the
task store (SQLite, and FerretDB) with the same digest, so `observe` finds every run its own."""

from __future__ import annotations

import io
import zipfile

from khala.config import JudicatorSettings
from khala.jobs.model import JobSpec, JobState, run_key, spec_from_dict, spec_to_dict
from khala.judicator.jobs import JobApi
from khala.judicator.notifier import DoneWatch
from khala.judicator.tasks import TaskApi
from khala.model import Case, Checker, Compare, CompareMode, Compile, Execute, Task
from khala.store.base import Store
from tests.store.test_contract import opener, store  # noqa: F401 - fixtures


def _zip(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


def rich_template() -> Task:
    checker = Checker(language="python3", source="import sys\nsys.exit(0)\n")
    return Task(
        user=4, priority=7,
        compile=Compile(source=_zip("a.sh", "echo hi"), command="cp a.sh b.sh", timeout=5,
                        memory_limit=64 << 20),
        execute=Execute(input="", data=_zip("d.txt", "data"), command="sh b.sh",
                        timeout=3, standard="", memory_limit=32 << 20, cpu_limit=2,
                        pids_limit=16, output_limit=4096, disk_limit=8 << 20,
                        cases=[Case(input="1\n", standard="1\n", weight=2, timeout=1),
                               Case(input="x", standard="y", cpu_limit=1, memory_limit=1 << 20,
                                    output_limit=100)],
                        compare=Compare(mode=CompareMode.CHECKER, abs_tol=0.5, rel_tol=0.25,
                                        checker=checker),
                        stop_on_failure=True, interactive=False),
    )


def test_runs_of_a_judged_template_are_adopted(store: Store) -> None:  # noqa: F811
    settings = JudicatorSettings()
    tasks = TaskApi(store, settings, DoneWatch(), lambda: None, lambda: None)
    jobs = JobApi(store, settings, tasks)
    spec = spec_from_dict(spec_to_dict(JobSpec(name="judged", type="daemon",
                                               template=rich_template(), replica=2)))
    state = JobState(started=True, cursor=[0, 3])
    jobs.submit_runs(spec, state, [0, 1])
    runs, foreign = jobs.survey(spec, state)
    assert foreign == {}
    assert [r.key if r else None for r in runs.values()] == [run_key(spec, state, i)
                                                             for i in range(2)]
