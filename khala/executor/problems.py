"""Tasks judged against a stored problem, on the executor: read the version's spec (a file, by
the digest the task carries), make every file it needs present in the file cache (fetched once,
checked, pinned while the task runs), and give the judge the task with its judging parts
filled from the version (khala/problems/spec.py `judging_task`: the very types of an inline
judged task) and the cached paths of its cases (khala/executor/casefiles.py)."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace

from khala.errors import InvalidInput
from khala.executor.casefiles import CaseFiles
from khala.executor.filecache import FileCache
from khala.files.refs import FileRef
from khala.model import ProblemRef, Task
from khala.problems.model import VersionSpec
from khala.problems.spec import MAX_SPEC_BYTES, judging_task, spec_from_bytes

SPECS_KEPT = 32  # parsed specs kept in memory (each a few hundred KB at most)


class ProblemTasks:
    def __init__(self, cache: FileCache) -> None:
        self.cache = cache
        self._specs: OrderedDict[str, VersionSpec] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}  # spec digest → held while it loads
        self._lock = threading.Lock()

    def _known(self, digest: str) -> VersionSpec | None:
        with self._lock:
            spec = self._specs.get(digest)
            if spec is not None:
                self._specs.move_to_end(digest)
            return spec

    def _spec(self, ref: ProblemRef) -> VersionSpec:
        """The version's spec: parsed once, kept in memory; tasks that ask for it while it
        loads wait for that load (one read of the cached file, not one each)."""
        spec = self._known(ref.spec)
        if spec is not None:
            return spec
        if not ref.spec or not 0 < ref.spec_size <= MAX_SPEC_BYTES:
            raise InvalidInput(f"task names problem {ref.id!r} without a usable spec")
        with self._lock:
            loading = self._loading.setdefault(ref.spec, threading.Lock())
        with loading:
            spec = self._known(ref.spec)
            if spec is not None:
                return spec
            try:
                with self.cache.holding([FileRef(ref.spec, ref.spec_size)]) as paths, open(
                        paths[ref.spec], "rb") as fh:
                    spec = spec_from_bytes(fh.read())
                with self._lock:
                    self._specs[ref.spec] = spec
                    while len(self._specs) > SPECS_KEPT:
                        self._specs.popitem(last=False)
            finally:
                with self._lock:
                    self._loading.pop(ref.spec, None)
        return spec

    @contextlib.contextmanager
    def prepared(self, task: Task) -> Iterator[tuple[Task, CaseFiles]]:
        """The task with the version's judging parts, and its cases' files, present and
        pinned while the block runs. Raises what fetching raised (InvalidInput for a spec that
        is not one, Unavailable/NotFound from the judicators)."""
        ref = task.execute.problem
        assert ref is not None
        spec = self._spec(ref)
        language = task.compile.language
        with self.cache.holding(spec.refs()) as paths:
            sources = {}
            for jury in (spec.checker, spec.interactor):
                if jury is not None:
                    with open(paths[jury.source.ref.sha256], "rb") as fh:
                        sources[jury.source.ref.sha256] = fh.read().decode("utf-8", "replace")
            judging = judging_task(spec, language, sources).execute
            own = task.execute
            execute = replace(judging, problem=ref, pids_limit=own.pids_limit,
                              disk_limit=own.disk_limit, outputs=list(own.outputs),
                              options=own.options)
            files = CaseFiles(inputs=[paths[c.input.sha256] for c in spec.cases],
                              answers=[paths[c.answer.sha256] for c in spec.cases],
                              extras={f.path: paths[f.ref.sha256] for f in spec.files},
                              cpu_seconds=spec.limits.cpu_seconds(language))
            yield replace(task, execute=execute), files
