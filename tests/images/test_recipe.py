"""Image recipes and the presets an image carries (khala/images/recipe.py), pure: the judge
image's recipe parses; each wrong recipe is refused with a message naming what is wrong; the
presets file an image build writes reads back as presets; a broken one is refused; the
mmdebstrap command of a recipe build carries the hooks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from khala.cli.images import build_argv
from khala.errors import InvalidInput
from khala.images.recipe import (
    PRESETS_PATH,
    load_recipe,
    parse_recipe,
    presets_document,
    read_image_presets,
)
from khala.judging.presets import HostLanguage

JUDGE = Path(__file__).resolve().parents[2] / "images" / "judge.toml"


def language(**over: Any) -> dict[str, Any]:
    return {"name": "c", "source": "main.c", "compile": "gcc -o main main.c", "run": "./main",
            "outputs": ["main"], "version": "gcc --version", **over}


def test_the_judge_recipe() -> None:
    recipe = load_recipe(str(JUDGE))
    names = [x.name for x in recipe.languages]
    assert recipe.name == "judge" and recipe.suite == "bookworm" and len(names) >= 15
    for wanted in ("c", "cpp", "python3", "pypy3", "java", "kotlin", "go", "rust", "javascript",
                   "ruby", "perl", "php", "haskell", "ocaml", "pascal", "csharp", "lua",
                   "bash"):
        assert wanted in names
    assert {"golang-go", "rustc", "kotlin"} <= set(recipe.packages)
    factors = {x.name: x.time_factor for x in recipe.languages}
    assert factors["c"] == 1.0 and factors["python3"] == 3.0 and factors["java"] == 2.0


@pytest.mark.parametrize(("doc", "words"), [
    ({"name": "Judge"}, "an image name"),
    ({"name": "j", "suite": "Bookworm!"}, "suite"),
    ({"name": "j", "packages": ["gcc", "rm -rf /"]}, "package names"),
    ({"name": "j", "packages": "gcc"}, "packages is a list"),
    ({"name": "j", "setup": [""]}, "setup is a list"),
    ({"name": "j", "extra": 1}, "unknown key"),
    ({"name": "j", "language": [language(name="C++")]}, "name is 1..32"),
    ({"name": "j", "language": [language(source="../main.c")]}, "plain file name"),
    ({"name": "j", "language": [language(run="  ")]}, "run is a non-empty command"),
    ({"name": "j", "language": [language(outputs=[])]}, "outputs"),
    ({"name": "j", "language": [language(time_factor=0)]}, "time_factor"),
    ({"name": "j", "language": [language(time_factor=True)]}, "time_factor"),
    ({"name": "j", "language": [language(time_factor=21)]}, "time_factor"),
    ({"name": "j", "language": [language(colour="red")]}, "unknown key"),
    ({"name": "j", "language": [language(), language()]}, "given twice"),
])
def test_wrong_recipes_are_refused(doc: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_recipe(doc)


def test_an_unreadable_recipe(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="No such file"):
        load_recipe(str(tmp_path / "none.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(InvalidInput, match="not TOML"):
        load_recipe(str(bad))


def write_presets(root: Path, doc: object) -> None:
    path = root / PRESETS_PATH
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))


def test_presets_written_by_a_build_read_back(tmp_path: Path) -> None:
    recipe = parse_recipe({"name": "j", "language": [
        language(), language(name="python3", source="main.py", compile="true",
                             run="python3 main.py", outputs=["main.py"], time_factor=3)]})
    write_presets(tmp_path, presets_document(recipe.languages,
                                             {"c": "gcc 12", "python3": "Python 3.11"}))
    found = read_image_presets(str(tmp_path))
    assert sorted(found) == ["c", "python3"]
    python = HostLanguage(found["python3"].preset, found["python3"].version)
    assert (python.version, python.run_command, python.preset.time_factor) == (
        "Python 3.11", "python3 main.py", 3.0)
    assert found["c"].preset.outputs == ("main",) and found["c"].preset.source == "main.c"


def test_an_image_without_presets_has_none(tmp_path: Path) -> None:
    assert read_image_presets(str(tmp_path)) == {}


@pytest.mark.parametrize(("doc", "words"), [
    ({"format": 2, "languages": []}, "not format 1"),
    ([], "not format 1"),
    ({"format": 1, "languages": [{k: v for k, v in language().items() if k != "version"}]},
     "no version"),
    ({"format": 1, "languages": [{**language(source="/etc/passwd"), "version": "1"}]},
     "plain file name"),
])
def test_a_broken_presets_file_is_refused(tmp_path: Path, doc: object, words: str) -> None:
    write_presets(tmp_path, doc)
    with pytest.raises(InvalidInput, match=words):
        read_image_presets(str(tmp_path))


def test_a_presets_file_through_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "etc" / "khala").mkdir(parents=True)
    os.symlink("/etc/hostname", tmp_path / PRESETS_PATH)
    with pytest.raises(InvalidInput, match="symbolic link"):
        read_image_presets(str(tmp_path))


def test_the_build_command_of_a_recipe() -> None:
    argv = build_argv("mmdebstrap", ["gcc"], "bookworm", "http://m", "/o/j.tar",
                      recipe=str(JUDGE), apt_cache="/cache dir")
    assert argv[:4] == ["mmdebstrap", "--quiet", "--variant=apt", "--mode=root"]
    assert argv[-3:] == ["bookworm", "/o/j.tar", "http://m"]
    assert "--setup-hook=sync-in '/cache dir' /var/cache/apt/archives/" in argv
    assert "--customize-hook=sync-out /var/cache/apt/archives '/cache dir'" in argv
    hook = [a for a in argv if "khala.images.customize" in a]
    assert len(hook) == 1 and hook[0].endswith(f'{JUDGE} "$1"')
    plain = build_argv("mmdebstrap", ["gcc"], "bookworm", "http://m", "/o/j.tar")
    assert not [a for a in plain if "hook" in a]
