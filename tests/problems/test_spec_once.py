"""The executor's spec of a stored problem (khala/executor/problems.py, `ProblemTasks`): tasks
that ask for one version's spec at once read it from the file cache once, not once each (the
cache's own counts stay what a single reader would make). A unit test of the in-memory
single flight: the cache stand-in is a fake that counts reads."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from khala.executor.problems import ProblemTasks
from khala.files.refs import FileRef
from khala.model import ProblemRef
from khala.problems.spec import spec_bytes
from khala.problems.upload import read_package
from tests.problems.packages import ab_package
from tests.problems.test_packages import package


class CountingCache:
    """Hands out one file; each `holding` is counted and lasts a while, so readers overlap."""

    def __init__(self, path: Path) -> None:
        self.path, self.reads = path, 0
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def holding(self, refs: list[FileRef]) -> Iterator[dict[str, str]]:
        with self.lock:
            self.reads += 1
        threading.Event().wait(0.2)
        yield {refs[0].sha256: str(self.path)}


def test_tasks_asking_for_one_spec_at_once_read_it_once(tmp_path: Path) -> None:
    data = spec_bytes(read_package(package(ab_package(3)), "ab"))
    path = tmp_path / "spec.json"
    path.write_bytes(data)
    cache = CountingCache(path)
    tasks = ProblemTasks(cache)  # type: ignore[arg-type]
    ref = ProblemRef(id="ab", judged=1, spec=hashlib.sha256(data).hexdigest(),
                     spec_size=len(data))
    start = threading.Barrier(8)

    def spec(_: int) -> Any:
        start.wait()
        return tasks._spec(ref)

    with ThreadPoolExecutor(8) as pool:
        specs = list(pool.map(spec, range(8)))
    assert cache.reads == 1
    assert all(s is specs[0] for s in specs) and len(specs[0].cases) == 3
    assert tasks._spec(ref) is specs[0] and cache.reads == 1  # kept in memory
