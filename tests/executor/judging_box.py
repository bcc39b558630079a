"""Fixtures for judging on the real bwrap sandbox, cold and warm, through the executor's own
judging (khala/executor/judge.py): a sandbox of each kind per module, and an executor's
settings and judging context (the python3 preset, no compile cache) in a fresh work area."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from khala.config import ExecutorSettings
from khala.executor.compile_cache import CompileCache
from khala.executor.judge import JudgeContext, judge_task
from khala.executor.languages import probe
from khala.judging.presets import PRESETS
from khala.model import Result, Task
from khala.sandbox.bwrap import BwrapSandbox
from tests.fixtures.sandboxes import bwrap_sandbox
from tests.fixtures.servers import missing


@pytest.fixture(scope="module", params=["cold", "warm"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[BwrapSandbox]:
    yield from bwrap_sandbox(request.param)


@dataclass
class Executor:
    sandbox: BwrapSandbox
    settings: ExecutorSettings
    context: JudgeContext
    root: Path


@pytest.fixture()
def executor(sandbox: BwrapSandbox) -> Iterator[Executor]:
    python = probe(PRESETS["python3"])
    if python is None:
        missing("python3 is not visible to the sandbox")
    with tempfile.TemporaryDirectory(prefix="khala-test-") as root:
        os.chmod(root, 0o711)
        os.mkdir(os.path.join(root, "work"), 0o711)
        settings = ExecutorSettings(work_dir=os.path.join(root, "work"))
        context = JudgeContext(languages={"python3": python},
                               cache=CompileCache(os.path.join(root, "cache"), 0))
        yield Executor(sandbox, settings, context, Path(root))



def judged(executor: Executor, task: Task) -> tuple[int, Result]:
    return judge_task(task, executor.sandbox, executor.settings, executor.context,
                      threading.Event(), lambda status: None)
