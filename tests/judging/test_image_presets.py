"""Languages with images, pure: a language offered in an image serves tasks built in that
image (and host offers serve any), the submission check says where it looked; a program built
in an image may name a language outside the host's table; a preset's time factor multiplies a
case's CPU and wall limits; stored languages of older executors (name and version only) still
read; an image's presets are read once, and a broken presets file is not used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from khala.config import ExecutorSettings, LimitSettings
from khala.errors import InvalidInput
from khala.executor.caserun import CaseEnv, run_limits
from khala.executor.image_languages import ImageLanguages
from khala.images.recipe import PRESETS_PATH
from khala.judging.validate import check_judging
from khala.judicator.offered import check_offered
from khala.model import Case, Compile, Execute, ImageRef, Language, Task
from khala.store.codec import languages_from_json, languages_to_json


def task(language: str, image: str = "") -> Task:
    ref = ImageRef(name=image, version=2, resolved=2, sha256="a" * 64, size=1) if image else None
    return Task(compile=Compile(source=b"PK", language=language, image=ref),
                execute=Execute(cases=[Case("1", "1")], image=ref))


LIVE = [Language("c", "gcc 12", 1, ["e1"]),
        Language("kotlin", "kotlinc 1.3", 1, ["e2"], image="judge:2", source="main.kt")]


def test_a_language_in_an_image_serves_tasks_built_in_it() -> None:
    check_offered(task("kotlin", "judge"), lambda: LIVE)
    check_offered(task("c", "judge"), lambda: LIVE)  # the host's serves an image's task too
    check_offered(task("c"), lambda: LIVE)
    with pytest.raises(InvalidInput, match="'kotlin' on its host .*offered in: judge:2"):
        check_offered(task("kotlin"), lambda: LIVE)
    with pytest.raises(InvalidInput, match="'kotlin' in image 'other'"):
        check_offered(task("kotlin", "other"), lambda: LIVE)
    with pytest.raises(InvalidInput, match="no live executor offers 'cobol'"):
        check_offered(task("cobol", "judge"), lambda: LIVE)


def test_an_image_task_may_name_a_language_the_host_table_lacks() -> None:
    policy = LimitSettings()
    check_judging(task("kotlin", "judge"), policy)
    with pytest.raises(InvalidInput, match="no language preset"):
        check_judging(task("kotlin"), policy)
    for bad in ("Kotlin", "kotlin\n", "a" * 33, "../c"):
        with pytest.raises(InvalidInput, match="no language name"):
            check_judging(task(bad, "judge"), policy)


def test_the_time_factor_multiplies_cpu_and_wall_limits() -> None:
    settings = ExecutorSettings()
    t = task("python3", "judge")
    env = CaseEnv(task=t, sandbox=None, settings=settings, cancel=None,  # type: ignore[arg-type]
                  artifacts="", run_command="")
    plain = run_limits(env, Case(timeout=2, cpu_limit=1))
    env.time_factor = 3.0
    slow = run_limits(env, Case(timeout=2, cpu_limit=1))
    assert (plain.cpu_time, plain.wall_time) == (1, 2)
    assert (slow.cpu_time, slow.wall_time) == (3, 6)
    assert slow.memory == plain.memory


def test_stored_languages_of_older_executors_still_read() -> None:
    assert languages_from_json('[["c", "gcc 12"]]') == [Language("c", "gcc 12")]
    rich = [Language("kotlin", "k", image="judge:2", source="main.kt", time_factor=2.0)]
    assert languages_from_json(languages_to_json(rich)) == rich


def test_an_images_presets_are_read_once(tmp_path: Path) -> None:
    path = tmp_path / PRESETS_PATH
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": 1, "languages": [
        {"name": "c", "source": "main.c", "compile": "gcc main.c", "run": "./a.out",
         "outputs": ["a.out"], "version": "gcc 12", "time_factor": 1.0}]}))
    presets = ImageLanguages()
    first = presets.of(str(tmp_path))
    assert first["c"].version == "gcc 12" and first["c"].run_command == "./a.out"
    path.write_text("changed")  # an image never changes: what was read stays
    assert presets.of(str(tmp_path)) is first


def test_a_broken_presets_file_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / PRESETS_PATH
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert ImageLanguages().of(str(tmp_path)) == {}
